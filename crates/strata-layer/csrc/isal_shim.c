/* A raw-deflate inflater over ISA-L's igzip (libisal), for strata-layer's gzip reader.
 *
 * Rust sees an opaque pointer and two calls, so the layout of `struct inflate_state`
 * (which changes between ISA-L versions) is only ever known to the C compiler, from the
 * installed header.
 *
 * libisal is loaded the first time a gzip layer is inflated (dlopen of the library with
 * the installed header's major version), not linked: every run of a program that
 * inflates nothing (most of strata's commands) skips mapping and relocating it, and a
 * machine without the library inflates with zlib-rs rather than failing to start. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <isa-l/igzip_lib.h>
#if defined(__has_include)
#if __has_include(<isa-l.h>)
#include <isa-l.h>
#endif
#endif
#ifndef ISAL_MAJOR_VERSION
#define ISAL_MAJOR_VERSION 2
#endif
#define STR_(x) #x
#define STR(x) STR_(x)

static void (*isal_init_fn)(struct inflate_state *);
static int (*isal_inflate_fn)(struct inflate_state *);
static pthread_once_t loaded = PTHREAD_ONCE_INIT;

static void load(void)
{
	void *lib = dlopen("libisal.so." STR(ISAL_MAJOR_VERSION), RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		return;
	}
	void *init = dlsym(lib, "isal_inflate_init");
	void *run = dlsym(lib, "isal_inflate");
	if (init == NULL || run == NULL) {
		dlclose(lib);
		return;
	}
	isal_init_fn = (void (*)(struct inflate_state *))init;
	isal_inflate_fn = (int (*)(struct inflate_state *))run;
}

/* Whether libisal could be loaded (tried once, on the first call). */
int strata_isal_available(void)
{
	pthread_once(&loaded, load);
	return isal_inflate_fn != NULL;
}

/* A fresh state, or NULL (out of memory, or no libisal: see strata_isal_available). */
void *strata_isal_new(void)
{
	if (!strata_isal_available()) {
		return NULL;
	}
	struct inflate_state *s = malloc(sizeof(*s));
	if (s != NULL) {
		isal_init_fn(s);
		s->crc_flag = ISAL_DEFLATE;
	}
	return s;
}

void strata_isal_free(void *p)
{
	free(p);
}

/* Inflate from `in` into `out`. Returns ISA-L's status (0, or a negative error). Sets
 * `consumed` and `produced`; `done` to 1 once the deflate stream's last block is out.
 * Then whole bytes that ISA-L read ahead into its bit buffer, past the end of the
 * stream, are given back in `rest` (at most 8; `rest_len` of them): they are the bytes
 * that follow the stream (a gzip trailer). */
int strata_isal_inflate(void *p, const uint8_t *in, uint32_t in_len, uint8_t *out, uint32_t out_len,
			uint32_t *consumed, uint32_t *produced, int *done, uint8_t rest[8], uint32_t *rest_len)
{
	struct inflate_state *s = p;
	int ret;

	s->next_in = (uint8_t *)in;
	s->avail_in = in_len;
	s->next_out = out;
	s->avail_out = out_len;
	ret = isal_inflate_fn(s);
	*consumed = in_len - s->avail_in;
	*produced = out_len - s->avail_out;
	*done = s->block_state == ISAL_BLOCK_FINISH;
	*rest_len = 0;
	if (ret == ISAL_DECOMP_OK && *done && s->read_in_length > 0) {
		/* The stream ends at a bit boundary: skip to the next byte, then hand back
		 * the whole bytes still buffered, oldest first. */
		uint64_t bits = s->read_in >> (s->read_in_length % 8);
		uint32_t n = (uint32_t)s->read_in_length / 8;
		for (uint32_t i = 0; i < n && i < 8; i++) {
			rest[i] = (uint8_t)(bits >> (8 * i));
		}
		*rest_len = n < 8 ? n : 8;
		s->read_in = 0;
		s->read_in_length = 0;
	}
	return ret;
}
