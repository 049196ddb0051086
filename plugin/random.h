/* random.h - secrets from the kernel's CSPRNG (getrandom). */
#ifndef DRONE_DEPS_RANDOM_H
#define DRONE_DEPS_RANDOM_H

#include <stddef.h>

/* Fills out with n random characters from [A-Za-z0-9] and a NUL (out must
 * hold n + 1 bytes). Returns 0, or -1 when the kernel gives no entropy. */
int random_alnum(char *out, size_t n);
/* Fills out with n random lowercase hex digits and a NUL. */
int random_hex(char *out, size_t n);

#endif
