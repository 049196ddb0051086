/* unit.h - shared includes for the cmocka unit tests.
 *
 * Each test file is one program whose main() sets TAP output, so the
 * project's runner counts "ok"/"not ok" lines across every suite. */
#ifndef DRONE_DEPS_UNIT_H
#define DRONE_DEPS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#endif
