/*
 * fuzz_plugin_args.c - libFuzzer target for the plugin spec and argument
 * parser (server/plugin.c)
 *
 * The first octet chooses the entry point, the rest (up to a NUL) is the
 * text:
 *  - low bit clear: plugin_from_descriptor() with a linked-in descriptor
 *    (bits 1-2: one that declares keys, one that declares none, one of a
 *    foreign ABI, one too small) and the text as "k=v,k=v".  The result
 *    is compared with a reference model of SPEC §5: items split at ',',
 *    no text at all is no arguments, an empty item refused, each "key=value" with a non-empty key, no key
 *    twice, timeout= seconds (0 < t <= 86400), on_timeout= tempfail,
 *    continue or reject, every other key declared.  On success the
 *    arguments are exactly the model's, in order, pointing into the
 *    plugin's own copy.
 *  - low bit set: plugin_load() on the text as a -p SPEC
 *    ("NAME[.so][:k=v,...]"), looked up in the build's plugin directory,
 *    so the real plugins' declared keys are used.  Specs whose name part
 *    could hold a '/' are skipped (the fuzzer must not dlopen arbitrary
 *    files).  The directory is $SMTPHOOK_FUZZ_PLUGIN_DIR, else
 *    <executable's directory>/../plugins; every plugin there is opened
 *    once up front so that each input's dlopen()/dlclose() is cheap.
 * plugin_unload() always follows, so LeakSanitizer sees every path.
 *
 *	cmake --preset fuzz && cmake --build --preset fuzz -j2
 *	build-fuzz/fuzz/fuzz_plugin_args -dict=tests/fuzz/fuzz_plugin_args.dict \
 *	    tests/fuzz/corpus/fuzz_plugin_args
 */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plugin.h"
#include "util.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define MODEL_MAX 512

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int LLVMFuzzerInitialize(int *, char ***);

static const char *const keys[] = { "dir", "fsync", "rules", "max",
	"domains", "a", NULL };

static const sh_plugin desc_keys = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "fz", .arg_keys = keys,
};
static const sh_plugin desc_nokeys = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = sizeof(sh_plugin), .name = "",
};
static const sh_plugin desc_abi = {
	.abi_major = SH_ABI_MAJOR + 1, .abi_minor = 0,
	.struct_size = sizeof(sh_plugin), .name = "future", .arg_keys = keys,
};
static const sh_plugin desc_small = {
	.abi_major = SH_ABI_MAJOR, .abi_minor = SH_ABI_MINOR,
	.struct_size = 8, .name = "small", .arg_keys = keys,
};

static char plugin_dir[PATH_MAX];
static void *held[32];
static size_t nheld;
static int initialised;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *env = getenv("SMTPHOOK_FUZZ_PLUGIN_DIR");
	char exe[PATH_MAX], *slash;
	ssize_t n;
	DIR *d;
	struct dirent *de;

	(void)argc, (void)argv;
	initialised = 1;
	if (env != NULL && env[0] != '\0') {
		snprintf(plugin_dir, sizeof(plugin_dir), "%s", env);
	} else if ((n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) > 0) {
		exe[n] = '\0';
		if ((slash = strrchr(exe, '/')) != NULL)
			*slash = '\0';
		snprintf(plugin_dir, sizeof(plugin_dir), "%.*s/../plugins",
		    (int)(sizeof(plugin_dir) - 16), exe);
	} else {
		snprintf(plugin_dir, sizeof(plugin_dir), "plugins");
	}
	/* Keep one reference to every plugin for the whole run. */
	if ((d = opendir(plugin_dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL && nheld < sizeof(held) / sizeof(held[0])) {
		char path[PATH_MAX + 300];
		size_t l = strlen(de->d_name);

		if (l < 4 || strcmp(de->d_name + l - 3, ".so") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", plugin_dir, de->d_name);
		if ((held[nheld] = dlopen(path, RTLD_NOW | RTLD_LOCAL)) != NULL)
			nheld++;
	}
	closedir(d);
	return 0;
}

struct model_arg {
	const char *key, *value;	/* into the model's copy */
};

/* declared - is key among the descriptor's keys? */
static int
declared(const sh_plugin *d, const char *key)
{
	const char *const *k;

	for (k = d->arg_keys; k != NULL && *k != NULL; k++)
		if (strcmp(*k, key) == 0)
			return 1;
	return 0;
}

/*
 * model - the reference: 0 and the kept arguments (in text, modified in
 * place), timeout and on_timeout; or -1.
 */
static int
model(const sh_plugin *d, char *text, struct model_arg *out, size_t *nout,
    double *timeout, sh_verdict *on_timeout)
{
	char *seen[MODEL_MAX];
	size_t nseen = 0, i;
	char *item, *next, *eq;

	*nout = 0;
	*timeout = 30;
	*on_timeout = SH_TEMPFAIL;
	for (item = text[0] != '\0' ? text : NULL; item != NULL; item = next) {
		if ((next = strchr(item, ',')) != NULL)
			*next++ = '\0';
		if (item[0] == '\0')
			return -1;		/* "a=1,,b=2", "a=1," */
		if ((eq = strchr(item, '=')) == NULL || eq == item)
			return -1;
		*eq = '\0';
		for (i = 0; i < nseen; i++)
			if (strcmp(seen[i], item) == 0)
				return -1;
		CHECK(nseen < MODEL_MAX);
		seen[nseen++] = item;
		if (strcmp(item, "timeout") == 0) {
			if (parse_seconds(eq + 1, timeout) < 0)
				return -1;
		} else if (strcmp(item, "on_timeout") == 0) {
			if (strcmp(eq + 1, "tempfail") == 0)
				*on_timeout = SH_TEMPFAIL;
			else if (strcmp(eq + 1, "continue") == 0)
				*on_timeout = SH_CONTINUE;
			else if (strcmp(eq + 1, "reject") == 0)
				*on_timeout = SH_REJECT;
			else
				return -1;
		} else if (!declared(d, item)) {
			return -1;
		} else {
			out[*nout].key = item;
			out[(*nout)++].value = eq + 1;
		}
	}
	return 0;
}

/* check_loaded - what a loaded plugin promises the host */
static void
check_loaded(const struct plugin *p, size_t textlen)
{
	size_t i, j;

	CHECK(p->desc != NULL && p->desc->abi_major == SH_ABI_MAJOR);
	CHECK(p->name != NULL && p->name[0] != '\0');
	CHECK(p->timeout > 0 && p->timeout <= 86400);
	CHECK(p->on_timeout == SH_TEMPFAIL || p->on_timeout == SH_CONTINUE ||
	    p->on_timeout == SH_REJECT);
	CHECK(p->nargs == 0 || p->args != NULL);
	CHECK(p->nargs <= textlen / 2 + 1);
	for (i = 0; i < p->nargs; i++) {
		const char *k = p->args[i].key, *v = p->args[i].value;

		CHECK(k >= p->argbuf && k < p->argbuf + textlen + 1);
		CHECK(v > k && v <= p->argbuf + textlen);
		CHECK(k[0] != '\0' && strchr(k, ',') == NULL && strchr(v, ',') == NULL);
		CHECK(strcmp(k, "timeout") != 0 && strcmp(k, "on_timeout") != 0);
		CHECK(declared(p->desc, k));
		for (j = 0; j < i; j++)
			CHECK(strcmp(p->args[j].key, k) != 0);
	}
}

static void
fuzz_descriptor(const sh_plugin *d, const char *text)
{
	struct plugin p;
	struct model_arg m[MODEL_MAX];
	char err[512], *copy;
	size_t nm, i, len = strlen(text);
	double timeout = 30;
	sh_verdict on_timeout = SH_TEMPFAIL;
	int rc, mrc, modeled;

	err[0] = '\0';
	rc = plugin_from_descriptor(&p, d, text, err, sizeof(err));
	CHECK(rc == 0 || rc == -1);
	if (d->abi_major != SH_ABI_MAJOR ||
	    d->struct_size < offsetof(sh_plugin, arg_keys) + sizeof(void *)) {
		CHECK(rc == -1);
	} else {
		copy = strdup(text);
		CHECK(copy != NULL);
		/* A text with more items than the model holds is skipped. */
		for (i = 0, nm = 1; copy[i] != '\0'; i++)
			nm += copy[i] == ',';
		modeled = nm <= MODEL_MAX;
		mrc = modeled ? model(d, copy, m, &nm, &timeout, &on_timeout) : rc;
		CHECK(rc == mrc);
		if (rc == 0)
			check_loaded(&p, len);
		if (rc == 0 && modeled) {
			CHECK(p.nargs == nm);
			CHECK(p.timeout == timeout && p.on_timeout == on_timeout);
			for (i = 0; i < nm; i++)
				CHECK(strcmp(p.args[i].key, m[i].key) == 0 &&
				    strcmp(p.args[i].value, m[i].value) == 0);
		}
		free(copy);
	}
	if (rc == 0) {
		CHECK(p.dl == NULL && p.path == NULL);
		plugin_unload(&p);
	} else {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		/* A failure has already released everything. */
		CHECK(p.name == NULL && p.argbuf == NULL && p.args == NULL);
	}
}

static void
fuzz_load(const char *spec)
{
	struct plugin p;
	char err[512];
	const char *last = strrchr(spec, ':');
	size_t namelen = last != NULL ? (size_t)(last - spec) : strlen(spec);
	int rc;

	if (memchr(spec, '/', namelen) != NULL)
		return;
	err[0] = '\0';
	rc = plugin_load(&p, spec, plugin_dir, err, sizeof(err));
	CHECK(rc == 0 || rc == -1);
	if (rc == 0) {
		const char *colon = strchr(spec, ':');

		CHECK(p.dl != NULL && p.path != NULL);
		CHECK(strncmp(p.path, plugin_dir, strlen(plugin_dir)) == 0);
		check_loaded(&p, strlen(spec));
		CHECK(colon != NULL || p.argbuf[0] == '\0');
		plugin_unload(&p);
	} else {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
		CHECK(p.dl == NULL && p.name == NULL && p.argbuf == NULL);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const sh_plugin *const descs[] = { &desc_keys, &desc_nokeys,
	    &desc_abi, &desc_small };
	char *text;

	if (!initialised)
		LLVMFuzzerInitialize(NULL, NULL);
	if (size == 0)
		return 0;
	text = malloc(size);
	CHECK(text != NULL);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	if (data[0] & 1)
		fuzz_load(text);
	else
		fuzz_descriptor(descs[(data[0] >> 1) & 3], text);
	free(text);
	return 0;
}
