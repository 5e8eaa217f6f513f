#ifndef TK_FILEOPS_H
#define TK_FILEOPS_H

/// Atomically exchanges the directory entries `a` and `b` (Linux renameat2 with
/// RENAME_EXCHANGE, both relative to the working directory). Returns 0, or -1 with errno set
/// (EINVAL or ENOSYS where the kernel or file system does not support the exchange).
int tk_rename_exchange(const char *a, const char *b);

#endif
