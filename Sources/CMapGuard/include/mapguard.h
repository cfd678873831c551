#ifndef PAGEHINT_MAPGUARD_H
#define PAGEHINT_MAPGUARD_H
#include <stddef.h>

/// Input files are read through read-only mappings. When another program truncates a file while it is
/// mapped, touching the pages past the new end raises SIGBUS. These functions turn that into the
/// tool's usual one-line error (file, byte offset, reason) and exit code 65, after removing the output
/// file being written, instead of a crash. A SIGBUS outside the registered mappings is not ours: the
/// default action (a core dump) is kept for it.

/// Installs the SIGBUS handler (once; later calls do nothing).
void ph_mapguard_install(void);
/// Registers a mapping of `path` at [base, base + length). At most 32 are remembered.
void ph_mapguard_add(const void *base, size_t length, const char *path);
/// Forgets the mapping at `base`.
void ph_mapguard_remove(const void *base);
/// The temporary output file to remove on such an error, or NULL for none.
void ph_mapguard_output(const char *path);

#endif
