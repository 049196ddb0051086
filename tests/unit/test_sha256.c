/* SHA-256 (plugin/sha256.c) against the FIPS 180-4 examples (NIST's
 * "Example Algorithms": one block, two blocks, a million 'a') and the
 * padding's edges (55/56/63/64 bytes: the length field fits, or spills
 * into a block of its own). */
#include <string.h>

#include "unit.h"
#include "../../plugin/sha256.h"

static void expect(const char *data, size_t n, const char *want)
{
	char hex[SHA256_HEX_LEN + 1];

	sha256_hex(data, n, hex);
	assert_string_equal(hex, want);
}

static void fips_one_and_two_block_examples(void **state)
{
	(void)state;
	expect("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	expect("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56,
	       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	expect("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	       112, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
	expect("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void fips_million_a_in_odd_chunks(void **state)
{
	static char a[1000000];
	unsigned char d1[SHA256_DIGEST_LEN], d2[SHA256_DIGEST_LEN];
	struct sha256 s;
	size_t off = 0, step = 1;

	(void)state;
	memset(a, 'a', sizeof(a));
	expect(a, sizeof(a), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	/* fed in chunks of 1, 2, 3, ... bytes: the same digest */
	sha256_init(&s);
	while (off < sizeof(a)) {
		size_t n = step < sizeof(a) - off ? step : sizeof(a) - off;

		sha256_update(&s, a + off, n);
		off += n;
		step = step % 97 + 1;
	}
	sha256_final(&s, d1);
	sha256_init(&s);
	sha256_update(&s, a, sizeof(a));
	sha256_final(&s, d2);
	assert_memory_equal(d1, d2, sizeof(d1));
}

static void padding_edges(void **state)
{
	static const struct {
		size_t n;
		const char *hex;
	} v[] = {
		{ 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318" },
		{ 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a" },
		{ 57, "f13b2d724659eb3bf47f2dd6af1accc87b81f09f59f2b75e5c0bed6589dfe8c6" },
		{ 63, "7d3e74a05d7db15bce4ad9ec0658ea98e3f06eeecf16b4c6fff2da457ddc2f34" },
		{ 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb" },
		{ 65, "635361c48bb9eab14198e76ea8ab7f1a41685d6ad62aa9146d301d4f17eb0ae0" },
		{ 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb" },
		{ 120, "2f3d335432c70b580af0e8e1b3674a7c020d683aa5f73aaaedfdc55af904c21c" },
	};
	char a[128];
	size_t i;

	(void)state;
	memset(a, 'a', sizeof(a));
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		expect(a, v[i].n, v[i].hex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fips_one_and_two_block_examples),
		cmocka_unit_test(fips_million_a_in_odd_chunks),
		cmocka_unit_test(padding_edges),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("sha256", tests, NULL, NULL);
}
