/* sat.h - saturating arithmetic for numbers that come from a server.
 *
 * Token lifetimes, lease expiries and Retry-After values are read from
 * answers drone-deps does not control: any 64-bit value can arrive, and a
 * signed overflow is undefined behaviour. These clamp to the range
 * instead, which keeps every comparison meaningful (a lease that ends at
 * LLONG_MAX is simply live). */
#ifndef DRONE_DEPS_SAT_H
#define DRONE_DEPS_SAT_H

#include <limits.h>

static inline long long sat_add(long long a, long long b)
{
	long long r;

	if (__builtin_add_overflow(a, b, &r))
		return b > 0 ? LLONG_MAX : LLONG_MIN;
	return r;
}

static inline long long sat_sub(long long a, long long b)
{
	long long r;

	if (__builtin_sub_overflow(a, b, &r))
		return b < 0 ? LLONG_MAX : LLONG_MIN;
	return r;
}

static inline long long sat_mul(long long a, long long b)
{
	long long r;

	if (__builtin_mul_overflow(a, b, &r))
		return (a < 0) != (b < 0) ? LLONG_MIN : LLONG_MAX;
	return r;
}

#endif
