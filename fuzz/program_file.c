/* Loading and saving a program file in either form: text for NAME.sfp, binary for NAME.bin
 * and the fuzzers' findings (crash-*, timeout-*, ... of libFuzzer, id:* of AFL++), whose
 * bytes may all happen to be printable; otherwise text when every byte is printable ASCII
 * or whitespace (a seed someone wrote), binary if not (a fuzzer's input). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "program.h"

/* Printable ASCII, or one of \t \n \v \f \r. */
static bool is_text_byte(uint8_t c)
{
	return (c >= 0x20 && c <= 0x7e) || (c >= '\t' && c <= '\r');
}

static bool looks_like_text(const uint8_t *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_text_byte(data[i]))
			return false;
	return true;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static bool is_fuzzer_artifact(const char *path)
{
	static const char *const prefixes[] = { "crash-", "timeout-", "oom-", "leak-", "slow-unit-", "id:" };
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(base, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static bool is_text_form(const char *path, const uint8_t *data, size_t len)
{
	if (ends_with(path, ".sfp"))
		return true;
	if (ends_with(path, ".bin") || is_fuzzer_artifact(path))
		return false;
	return looks_like_text(data, len);
}

/* A NAME.bin that is not a fuzzer's input was written whole by shadowfuzz (encode,
 * minimize, export): one that ends inside an op record lost its tail. A fuzzer's input
 * may end anywhere (the rest of the record reads as zeros, as in the fuzz target). */
static bool is_truncated_encoding(const char *path, const uint8_t *data, size_t len)
{
	return ends_with(path, ".bin") && !is_fuzzer_artifact(path) &&
	       program_partial_tail(data, len) != 0;
}

/* The whole file, NUL-terminated so it can be parsed as text; NULL with errno on failure. */
static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0;
	uint8_t *data = NULL;

	if (!f)
		return NULL;
	for (;;) {
		uint8_t *bigger = realloc(data, cap + 1);

		if (!bigger) {
			errno = ENOMEM;
			break;
		}
		data = bigger;
		n += fread(data + n, 1, cap - n, f);
		if (n < cap)
			break;
		cap *= 2;
	}
	/* A short read ends the loop on end of file and on a read error (errno set). */
	if (ferror(f) || !data || n == cap) {
		int saved = errno;

		free(data);
		fclose(f);
		errno = saved;
		return NULL;
	}
	fclose(f);
	data[n] = '\0';
	*len = n;
	return data;
}

int program_load_file(const char *path, struct program *out, char *err, size_t errlen)
{
	size_t len;
	uint8_t *data = read_file(path, &len);
	int ret = 0;

	if (!data) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (is_text_form(path, data, len)) {
		ret = program_parse((const char *)data, path, out, err, errlen);
	} else if (is_truncated_encoding(path, data, len)) {
		snprintf(err, errlen,
			 "%s: truncated: it ends %zu bytes into an op record (shadowfuzz writes "
			 ".bin files whole; fuzzer inputs named crash-*, id:* ... may end anywhere)",
			 path, program_partial_tail(data, len));
		ret = -1;
	} else {
		program_decode(data, len, out);
	}
	free(data);
	return ret;
}

int program_save_new(const char *path, const struct program *prog, const char *header,
		     char *err, size_t errlen)
{
	static uint8_t bytes[PROG_MAX_OPS * 64];
	char *text = NULL;
	size_t text_len = 0;
	FILE *f;
	int r;

	if (!ends_with(path, ".sfp"))
		return file_write_new(path, bytes, program_encode(prog, bytes, sizeof(bytes)), err,
				      errlen);
	f = open_memstream(&text, &text_len);
	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (header)
		fputs(header, f);
	program_print(prog, f);
	fclose(f);
	r = file_write_new(path, text, text_len, err, errlen);
	free(text);
	return r;
}

void program_file_stem(const char *path, char *buf, size_t len)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	char *dot;

	snprintf(buf, len, "%s", base);
	dot = strrchr(buf, '.');
	if (dot && dot != buf)
		*dot = 0;
}

int program_encode_into(const char *file, const char *dir, char *err, size_t errlen)
{
	static uint8_t bytes[PROG_MAX_OPS * 64];
	static struct program prog;
	char stem[1024], *path;
	int r;

	if (program_load_file(file, &prog, err, errlen))
		return -1;
	program_file_stem(file, stem, sizeof(stem));
	if (asprintf(&path, "%s/%s.bin", dir, stem) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r = file_write_new(path, bytes, program_encode(&prog, bytes, sizeof(bytes)), err, errlen);
	free(path);
	return r;
}
