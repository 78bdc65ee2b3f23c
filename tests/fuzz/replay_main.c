/*
 * replay_main.c - run a libFuzzer target over saved inputs, without libFuzzer.
 *
 * SYNOPSIS
 *	replay_<name> [FILE-OR-DIRECTORY...]
 *
 * DESCRIPTION
 *	Linked with one tests/fuzz/fuzz_<name>.c, this main() calls
 *	LLVMFuzzerTestOneInput() once with an empty input, then once for every
 *	regular file named on the command line or found (recursively, in sorted
 *	order, dot-files skipped) in a directory named there. It lets ctest
 *	replay the corpus with any compiler and under any sanitizer or valgrind.
 *	LLVMFuzzerInitialize() is called first when the target defines it.
 *	Exit status: 0 when every input ran, 1 on an I/O error (a crash in the
 *	target ends the process, which fails the test).
 */
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);
int LLVMFuzzerInitialize(int *, char ***) __attribute__((weak));

static int replay_path(const char *);

static unsigned long replay_count;

/*
 * replay_buf - run the target on one input held in a fresh heap buffer, so
 * that sanitizers catch reads past its end.
 */
static void
replay_buf(const uint8_t *data, size_t len)
{
	uint8_t *copy;

	copy = malloc(len ? len : 1);
	if (copy == NULL) {
		fprintf(stderr, "replay: out of memory\n");
		exit(1);
	}
	if (len)
		memcpy(copy, data, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
	replay_count++;
}

/*
 * replay_file - read a whole file and run the target on it.
 */
static int
replay_file(const char *path)
{
	FILE *fp;
	uint8_t *buf = NULL, *nbuf;
	size_t len = 0, cap = 0, n;

	if ((fp = fopen(path, "rb")) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			if ((nbuf = realloc(buf, cap)) == NULL) {
				fprintf(stderr, "replay: %s: out of memory\n", path);
				free(buf);
				fclose(fp);
				return -1;
			}
			buf = nbuf;
		}
		n = fread(buf + len, 1, cap - len, fp);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(fp)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		free(buf);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	replay_buf(buf, len);
	free(buf);
	return 0;
}

static int
name_cmp(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;

	return strcmp(*x, *y);
}

/*
 * replay_dir - replay every entry of a directory in sorted order.
 */
static int
replay_dir(const char *path)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL, **nnames, *full;
	size_t n = 0, cap = 0, i, flen;
	int rc = 0;

	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nnames = realloc(names, cap * sizeof(*names))) == NULL) {
				rc = -1;
				break;
			}
			names = nnames;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			rc = -1;
			break;
		}
		n++;
	}
	closedir(d);
	if (rc == -1)
		fprintf(stderr, "replay: %s: out of memory\n", path);
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	for (i = 0; i < n; i++) {
		flen = strlen(path) + strlen(names[i]) + 2;
		if (rc == 0 && (full = malloc(flen)) != NULL) {
			snprintf(full, flen, "%s/%s", path, names[i]);
			if (replay_path(full) == -1)
				rc = -1;
			free(full);
		} else if (rc == 0) {
			rc = -1;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

/*
 * replay_path - replay a file, or a directory recursively.
 */
static int
replay_path(const char *path)
{
	struct stat st;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (S_ISDIR(st.st_mode))
		return replay_dir(path);
	if (S_ISREG(st.st_mode))
		return replay_file(path);
	return 0;
}

int
main(int argc, char **argv)
{
	int i, rc = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);

	replay_buf((const uint8_t *)"", 0);
	for (i = 1; i < argc; i++) {
		/* Skip libFuzzer-style flags so the same command lines work. */
		if (argv[i][0] == '-' && argv[i][1] != '\0')
			continue;
		if (replay_path(argv[i]) == -1)
			rc = 1;
	}
	fprintf(stderr, "replay: %lu input(s) ran\n", replay_count);
	return rc;
}
