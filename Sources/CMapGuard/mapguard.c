#define _GNU_SOURCE
#include "mapguard.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define SLOTS 32
#define PATH_MAX_BYTES 1024

struct slot {
    volatile uintptr_t base;   /* 0: free */
    volatile size_t length;
    char path[PATH_MAX_BYTES];
};

static struct slot slots[SLOTS];
static char output[PATH_MAX_BYTES];
static volatile int has_output;
static volatile int installed;

static void copy_path(char *dst, const char *src) {
    size_t n = strlen(src);
    if (n >= PATH_MAX_BYTES) n = PATH_MAX_BYTES - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static void put(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void put_decimal(uint64_t v) {
    char buf[24];
    int i = (int)sizeof(buf) - 1;
    buf[i] = 0;
    do { buf[--i] = (char)('0' + v % 10); v /= 10; } while (v > 0 && i > 0);
    put(buf + i);
}

static void on_sigbus(int sig, siginfo_t *info, void *context) {
    (void)context;
    uintptr_t a = (uintptr_t)info->si_addr;
    for (int k = 0; k < SLOTS; k++) {
        uintptr_t b = slots[k].base;
        if (b != 0 && a >= b && a - b < slots[k].length) {
            put("pagehint: ");
            put(slots[k].path);
            put(": byte ");
            put_decimal((uint64_t)(a - b));
            put(": the file became shorter while it was being read (truncated by another program?)\n");
            if (has_output) unlink(output);
            _exit(65);
        }
    }
    /* Not an input mapping: keep the default action. */
    signal(sig, SIG_DFL);
    raise(sig);
}

void ph_mapguard_install(void) {
    if (installed) return;
    installed = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

void ph_mapguard_add(const void *base, size_t length, const char *path) {
    for (int k = 0; k < SLOTS; k++) {
        if (slots[k].base == 0) {
            copy_path(slots[k].path, path);
            slots[k].length = length;
            slots[k].base = (uintptr_t)base;
            return;
        }
    }
}

void ph_mapguard_remove(const void *base) {
    for (int k = 0; k < SLOTS; k++) {
        if (slots[k].base == (uintptr_t)base) {
            slots[k].base = 0;
            return;
        }
    }
}

void ph_mapguard_output(const char *path) {
    has_output = 0;
    if (path == NULL) return;
    copy_path(output, path);
    has_output = 1;
}
