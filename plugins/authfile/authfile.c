/*
 * authfile.c - AUTH verdicts from a file of user:hash lines
 *
 *	-p authfile:file=/etc/smtphook/users
 *
 * Each line is "user:hash" where hash is any crypt(3) hash libxcrypt
 * knows: yescrypt ($y$), bcrypt ($2b$), sha512-crypt ($6$) ...; '#'
 * comments and blank lines are skipped.  The file is read once at start.
 * Hashing is slow on purpose, so it runs on the host's thread pool with a
 * PENDING verdict: a slow hash never stalls the other sessions.  Unknown
 * users are checked against a dummy hash so that timing does not tell
 * which users exist.
 */
#include <crypt.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smtphook.h>

struct user {
	char *name;
	char *hash;
};

struct authfile {
	struct user *users;
	size_t nusers;
	char *dummy_hash;	/* same cost as real ones: for unknown users */
};

/* One pool job: copies, since the session may be gone when it ends. */
struct check {
	sh_pending tok;
	char *hash;
	char *password;
	int unknown;	/* hashed against the dummy for timing, then refused */
	int ok;
};

static const char *const authfile_keys[] = { "file", NULL };

static int
user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct user *)a)->name, ((const struct user *)b)->name);
}

static void
authfile_free(struct authfile *af)
{
	size_t i;

	for (i = 0; i < af->nusers; i++) {
		free(af->users[i].name);
		free(af->users[i].hash);
	}
	free(af->users);
	free(af->dummy_hash);
	free(af);
}

/* authfile_load - parse the file; -1 with the reason (file:line) */
static int
authfile_load(sh_ctx *ctx, struct authfile *af, const char *path)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	unsigned lineno = 0;
	size_t cap = 0;

	if (f == NULL) {
		sh_error(ctx, "file=%s: %s", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon, *end = line + strlen(line);

		lineno++;
		if (end > line && end[-1] != '\n' && !feof(f)) {
			sh_error(ctx, "%s:%u: line too long", path, lineno);
			fclose(f);
			return -1;
		}
		while (end > line && (end[-1] == '\n' || end[-1] == '\r' ||
		    end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		colon = strchr(line, ':');
		if (colon == NULL || colon == line || colon[1] != '$') {
			sh_error(ctx, "%s:%u: expected user:$hash", path, lineno);
			fclose(f);
			return -1;
		}
		*colon = '\0';
		if (af->nusers == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct user *n = realloc(af->users, ncap * sizeof(*n));
			if (n == NULL)
				goto oom;
			af->users = n;
			cap = ncap;
		}
		af->users[af->nusers].name = strdup(line);
		af->users[af->nusers].hash = strdup(colon + 1);
		if (af->users[af->nusers].name == NULL ||
		    af->users[af->nusers].hash == NULL) {
			free(af->users[af->nusers].name);
			free(af->users[af->nusers].hash);
			goto oom;
		}
		af->nusers++;
	}
	fclose(f);
	qsort(af->users, af->nusers, sizeof(*af->users), user_cmp);
	return 0;
oom:
	fclose(f);
	sh_error(ctx, "out of memory");
	return -1;
}

static int
authfile_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct authfile *af = calloc(1, sizeof(*af));
	const char *path = NULL;
	struct crypt_data cd;
	size_t i;

	if (af == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	for (i = 0; i < nargs; i++)
		if (strcmp(args[i].key, "file") == 0)
			path = args[i].value;
	if (path == NULL) {
		sh_error(ctx, "file= is required (lines of user:crypt-hash)");
		free(af);
		return -1;
	}
	if (authfile_load(ctx, af, path) < 0) {
		authfile_free(af);
		return -1;
	}
	/* A dummy of the first user's hash kind, so a miss costs the same. */
	memset(&cd, 0, sizeof(cd));
	if (af->nusers > 0 && crypt_rn("dummy", af->users[0].hash, &cd, sizeof(cd)) != NULL &&
	    cd.output[0] == '$')
		af->dummy_hash = strdup(cd.output);
	sh_plugin_set(ctx, af);
	return 0;
}

static void
authfile_fini(sh_ctx *ctx)
{
	authfile_free(sh_plugin_get(ctx));
}

/* check_work - on a pool thread: the slow part */
static void
check_work(void *arg)
{
	struct check *c = arg;
	struct crypt_data *cd = calloc(1, sizeof(*cd));
	const char *out;

	if (cd == NULL)
		return;
	out = crypt_rn(c->password, c->hash, cd, sizeof(*cd));
	/* crypt_r returns "*0"/"*1" style failure tokens, never a match. */
	c->ok = !c->unknown && out != NULL && out[0] == '$' &&
	    strcmp(out, c->hash) == 0;
	explicit_bzero(cd, sizeof(*cd));
	free(cd);
}

/* check_done - on the loop: the verdict */
static void
check_done(void *arg)
{
	struct check *c = arg;

	if (c->ok)
		sh_resume(c->tok, SH_ACCEPT, 0, NULL, NULL);
	else
		sh_resume(c->tok, SH_REJECT, 0, NULL, NULL);
	explicit_bzero(c->password, strlen(c->password));
	free(c->password);
	free(c->hash);
	free(c);
}

static sh_verdict
authfile_auth(sh_ctx *ctx, const char *mechanism, const char *user,
    const char *password)
{
	struct authfile *af = sh_plugin_get(ctx);
	struct user key = { .name = (char *)(uintptr_t)user }, *u;
	struct check *c;
	const char *hash;

	(void)mechanism;
	u = bsearch(&key, af->users, af->nusers, sizeof(*af->users), user_cmp);
	hash = u != NULL ? u->hash : af->dummy_hash;
	if (hash == NULL)
		return SH_REJECT;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return SH_TEMPFAIL;
	c->hash = strdup(hash);
	c->password = strdup(password);
	if (c->hash == NULL || c->password == NULL) {
		free(c->hash);
		free(c->password);
		free(c);
		return SH_TEMPFAIL;
	}
	c->unknown = u == NULL;
	c->tok = sh_pend(ctx, NULL, NULL);
	if (sh_pool_submit(ctx, check_work, check_done, c) < 0) {
		sh_resume(c->tok, SH_TEMPFAIL, 0, NULL, NULL);
		explicit_bzero(c->password, strlen(c->password));
		free(c->password);
		free(c->hash);
		free(c);
	}
	return SH_PENDING;
}

SH_PLUGIN_DEFINE(
	.name = "authfile",
	.version = "1.0",
	.arg_keys = authfile_keys,
	.init = authfile_init,
	.fini = authfile_fini,
	.auth = authfile_auth,
	/* None: it checks credentials; refusing recipients of clients who
	 * did not authenticate is for another plugin. */
	.roles = 0,
);
