// File-system calls Swift cannot make directly: renameat2 is not declared by every glibc the
// Glibc module sees, and syscall(2) is variadic (not callable from Swift).
#define _GNU_SOURCE
#include "fileops.h"
#include <errno.h>

#if defined(__linux__)
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int tk_rename_exchange(const char *a, const char *b) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
    errno = ENOSYS;
    return -1;
#endif
}
#else
int tk_rename_exchange(const char *a, const char *b) {
    (void)a; (void)b;
    errno = ENOSYS;
    return -1;
}
#endif
