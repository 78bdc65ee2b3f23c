/*
 * policy.c - who may connect, greet, send and receive
 *
 *	smtphookd -p policy:allow_ip=192.0.2.0/24;2001:db8::/32,\
 *	    rcpt_domains=example.org;*.example.org,require_helo=yes -p ...
 *
 * Arguments (at least one; lists are ';'-separated):
 *	allow_ip=LIST		only these clients (CIDR or bare addresses)
 *	deny_ip=LIST		never these clients; deny wins over allow
 *	rcpt_domains=LIST	only recipients in these domains; "*.d" or
 *				".d" = any sub-domain of d (not d itself)
 *	deny_senders=FILE	one address or @domain (@*.domain) per line
 *	require_helo=yes	the HELO/EHLO name must be an FQDN or an
 *				address literal
 *	reject_ip_helo=yes	an IP in HELO/EHLO (bare or [literal]) must
 *				be the client's own address
 *
 * Replies (docs/plugins.md explains the choice of codes):
 *	connect	554 5.7.1	not in allow_ip / in deny_ip
 *	helo	501 5.5.2	require_helo: not an FQDN or address literal
 *	helo	550 5.7.1	reject_ip_helo: an address that is not the client's
 *	mail	550 5.7.1	deny_senders
 *	rcpt	550 5.7.1	rcpt_domains
 *
 * Everything is parsed once at init into flat arrays: networks as
 * sh_cidr (family, prefix, 16 bytes), domains and addresses lower-cased
 * and sorted for binary search.  No hook allocates.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <smtphook.h>

#include "helpers/sh_helpers.h"

/* A set of domains: exact names, and the parents of "*.parent" patterns,
 * both lower-case, sorted, without a trailing dot. */
struct domset {
	const char **exact;
	size_t nexact;
	const char **parent;
	size_t nparent;
};

struct policy {
	sh_cidr *allow;
	size_t nallow;
	sh_cidr *deny;
	size_t ndeny;
	int have_allow;

	struct domset rcpt;		/* rcpt_domains */
	char *rcpt_text;		/* their strings */
	int have_rcpt;

	const char **senders;		/* deny_senders addresses, sorted */
	size_t nsenders;
	struct domset sender_domains;	/* deny_senders @domain lines */
	char *senders_text;		/* the file, lower-cased, split */

	int require_helo;
	int reject_ip_helo;
};

static const char *const policy_keys[] = {
	"allow_ip", "deny_ip", "rcpt_domains", "deny_senders", "require_helo",
	"reject_ip_helo", NULL
};

/* ---- helpers ------------------------------------------------------- */

/* A search key: client text (any case) against lower-case entries. */
struct key {
	const char *p;
	size_t len;
};

/* key_cmp - bsearch comparator: struct key vs const char * entry */
static int
key_cmp(const void *k, const void *e)
{
	const struct key *key = k;
	const unsigned char *s = *(const unsigned char *const *)e;
	size_t i;

	for (i = 0; i < key->len; i++) {
		unsigned char a = (unsigned char)sh_ascii_lower((unsigned char)key->p[i]);

		if (s[i] == '\0' || a > s[i])
			return 1;
		if (a < s[i])
			return -1;
	}
	return s[i] == '\0' ? 0 : -1;
}

/* str_cmp - qsort comparator for const char * entries */
static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
in_sorted(const char *const *arr, size_t n, const char *p, size_t len)
{
	struct key k = { p, len };

	return n > 0 && bsearch(&k, arr, n, sizeof(*arr), key_cmp) != NULL;
}

/*
 * domset_match - is domain in the set?  Exact names, then every parent
 * of the domain against the "*.parent" patterns: the semantics of
 * sh_domain_match() over the whole set, in O(labels * log n).
 */
static int
domset_match(const struct domset *set, const char *domain)
{
	size_t len = strlen(domain), i;

	if (len > 0 && domain[len - 1] == '.')
		len--;
	if (len == 0)
		return 0;
	if (in_sorted(set->exact, set->nexact, domain, len))
		return 1;
	for (i = 1; i + 1 < len; i++)
		if (domain[i] == '.' &&
		    in_sorted(set->parent, set->nparent, domain + i + 1, len - i - 1))
			return 1;
	return 0;
}

/* domset_add - add a lower-case, NUL-terminated pattern (its storage is
 * the caller's and outlives the set) */
static int
domset_add(struct domset *set, const char *pattern)
{
	const char ***arr;
	size_t *n;
	const char **grown;

	if (pattern[0] == '*' && pattern[1] == '.') {
		pattern += 2;
		arr = &set->parent;
		n = &set->nparent;
	} else if (pattern[0] == '.') {
		pattern += 1;
		arr = &set->parent;
		n = &set->nparent;
	} else {
		arr = &set->exact;
		n = &set->nexact;
	}
	if ((grown = realloc(*arr, (*n + 1) * sizeof(**arr))) == NULL)
		return -1;
	grown[(*n)++] = pattern;
	*arr = grown;
	return 0;
}

static void
domset_sort(struct domset *set)
{
	if (set->nexact > 1)
		qsort(set->exact, set->nexact, sizeof(*set->exact), str_cmp);
	if (set->nparent > 1)
		qsort(set->parent, set->nparent, sizeof(*set->parent), str_cmp);
}

static void
domset_free(struct domset *set)
{
	free(set->exact);
	free(set->parent);
}

static int
cidr_list_match(const sh_cidr *list, size_t n, const sh_cidr *ip)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (sh_cidr_match(&list[i], ip))
			return (int)i + 1;
	return 0;
}

/* ---- init ---------------------------------------------------------- */

/* check_list - the number of items of KEY=LIST, or -1 (reason set) when
 * it has none or an empty one; what says what the items are */
static long
check_list(sh_ctx *ctx, const char *key, const char *list, const char *what)
{
	const char *cur = list;
	size_t len;
	long n = 0;

	while (sh_list_next(&cur, ';', &len) != NULL)
		n += len > 0;
	if (n == 0) {
		sh_error(ctx, "%s: empty list (give %s, ';'-separated)", key, what);
		return -1;
	}
	if (sh_list_check(list, ';') < 0) {
		sh_error(ctx, "%s: empty item in '%s' (a doubled or trailing ';'?)",
		    key, list);
		return -1;
	}
	return n;
}

/* parse_cidrs - KEY=LIST into an array */
static int
parse_cidrs(sh_ctx *ctx, const char *key, const char *list, sh_cidr **out, size_t *nout)
{
	const char *cur = list, *item;
	size_t len, n;
	long items = check_list(ctx, key, list, "addresses or networks");
	sh_cidr *arr;
	char text[SH_CIDR_STRLEN];

	if (items < 0)
		return -1;
	if ((arr = calloc((size_t)items, sizeof(*arr))) == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	cur = list;
	n = 0;
	while ((item = sh_list_next(&cur, ';', &len)) != NULL) {
		int rc = sh_cidr_parse(item, len, &arr[n]);

		if (rc < 0) {
			sh_error(ctx, "%s: '%.*s' is not an IPv4/IPv6 address or CIDR "
			    "network", key, (int)len, item);
			free(arr);
			return -1;
		}
		if (rc > 0)
			sh_log(ctx, SH_LOG_WARN, "%s: '%.*s' has host bits set; using %s",
			    key, (int)len, item, sh_cidr_format(&arr[n], text, sizeof(text)));
		n++;
	}
	*out = arr;
	*nout = n;
	return 0;
}

/* parse_domains - rcpt_domains=LIST */
static int
parse_domains(sh_ctx *ctx, struct policy *p, const char *list)
{
	const char *cur = list, *item;
	size_t len, used = 0;

	if (check_list(ctx, "rcpt_domains", list, "domains") < 0)
		return -1;
	/* Every item plus its NUL fits in the list's own length. */
	if ((p->rcpt_text = malloc(strlen(list) + 1)) == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	while ((item = sh_list_next(&cur, ';', &len)) != NULL) {
		char *copy = p->rcpt_text + used;

		if (sh_domain_check(item, len, SH_DOMAIN_WILDCARD) < 0) {
			sh_error(ctx, "rcpt_domains: '%.*s' is not a domain or "
			    "*.domain pattern", (int)len, item);
			return -1;
		}
		if (item[len - 1] == '.')
			len--;
		sh_ascii_lower_copy(copy, item, len);
		used += len + 1;
		if (domset_add(&p->rcpt, copy) < 0) {
			sh_error(ctx, "out of memory");
			return -1;
		}
	}
	domset_sort(&p->rcpt);
	p->have_rcpt = 1;
	return 0;
}

/* read_file - the whole file, NUL-terminated */
static char *
read_file(sh_ctx *ctx, const char *path)
{
	FILE *f;
	struct stat st;
	char *buf = NULL;
	size_t n;

	if ((f = fopen(path, "re")) == NULL) {
		sh_error(ctx, "deny_senders: %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		sh_error(ctx, "deny_senders: %s: not a regular file", path);
		goto out;
	}
	if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
		sh_error(ctx, "deny_senders: %s: out of memory", path);
		goto out;
	}
	n = fread(buf, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		sh_error(ctx, "deny_senders: %s: %s", path, strerror(errno));
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[n] = '\0';
	if (memchr(buf, '\0', n) != NULL) {
		sh_error(ctx, "deny_senders: %s: contains a NUL byte (not a text file?)",
		    path);
		free(buf);
		buf = NULL;
	}
out:
	fclose(f);
	return buf;
}

/*
 * parse_senders - deny_senders=FILE: one entry per line,
 *	user@example.com	that address
 *	@example.com		any sender in that domain
 *	@*.example.com		any sender in a sub-domain
 * '#' at the start of a line or after a blank starts a comment; blank
 * lines are ignored.  Case-insensitive.  A bad line is an error with
 * FILE:LINE.
 */
static int
parse_senders(sh_ctx *ctx, struct policy *p, const char *path)
{
	char *line, *next, *text;
	size_t lineno = 0, cap = 0;

	if ((text = read_file(ctx, path)) == NULL)
		return -1;
	p->senders_text = text;
	for (line = text; line != NULL; line = next) {
		char *end, *hash, *at;
		size_t len;

		lineno++;
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		for (hash = line; (hash = strchr(hash, '#')) != NULL; hash++)
			if (hash == line || hash[-1] == ' ' || hash[-1] == '\t') {
				*hash = '\0';
				break;
			}
		while (*line == ' ' || *line == '\t')
			line++;
		end = line + strlen(line);
		while (end > line && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
			end--;
		*end = '\0';
		if ((len = (size_t)(end - line)) == 0)
			continue;
		if (strpbrk(line, " \t") != NULL) {
			sh_error(ctx, "deny_senders: %s:%zu: one address or @domain per line",
			    path, lineno);
			return -1;
		}
		sh_ascii_lower_copy(line, line, len);
		at = strrchr(line, '@');
		if (at == NULL || sh_domain_check(at + 1, strlen(at + 1),
		    at == line ? SH_DOMAIN_WILDCARD : 0) < 0) {
			sh_error(ctx, "deny_senders: %s:%zu: '%s' is neither an address "
			    "nor @domain (a whole domain is written @example.com)",
			    path, lineno, line);
			return -1;
		}
		if (end[-1] == '.')
			*--end = '\0';
		if (at == line) {
			if (domset_add(&p->sender_domains, line + 1) < 0)
				goto nomem;
			continue;
		}
		if (p->nsenders == cap) {
			const char **grown;

			cap = cap ? 2 * cap : 64;
			if ((grown = realloc(p->senders, cap * sizeof(*grown))) == NULL)
				goto nomem;
			p->senders = grown;
		}
		p->senders[p->nsenders++] = line;
	}
	if (p->nsenders > 1)
		qsort(p->senders, p->nsenders, sizeof(*p->senders), str_cmp);
	domset_sort(&p->sender_domains);
	sh_log(ctx, SH_LOG_INFO, "deny_senders: %zu address(es), %zu domain pattern(s) "
	    "from %s", p->nsenders, p->sender_domains.nexact + p->sender_domains.nparent,
	    path);
	return 0;
nomem:
	sh_error(ctx, "deny_senders: %s: out of memory", path);
	return -1;
}

static void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	free(p->allow);
	free(p->deny);
	domset_free(&p->rcpt);
	free(p->rcpt_text);
	free(p->senders);
	domset_free(&p->sender_domains);
	free(p->senders_text);
	free(p);
}

static int
parse_flag(sh_ctx *ctx, const char *key, const char *value, int *out)
{
	if (sh_parse_bool(value, out) == 0)
		return 0;
	sh_error(ctx, "%s=%s: expected yes or no", key, value);
	return -1;
}

static int
policy_init(sh_ctx *ctx, const sh_arg *args, size_t nargs)
{
	struct policy *p;
	size_t i;
	int rc = 0;

	if (nargs == 0) {
		sh_error(ctx, "no rule given: use allow_ip=, deny_ip=, rcpt_domains=, "
		    "deny_senders=, require_helo=yes or reject_ip_helo=yes");
		return -1;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL) {
		sh_error(ctx, "out of memory");
		return -1;
	}
	for (i = 0; i < nargs && rc == 0; i++) {
		const char *k = args[i].key, *v = args[i].value;

		if (strcmp(k, "allow_ip") == 0) {
			rc = parse_cidrs(ctx, k, v, &p->allow, &p->nallow);
			p->have_allow = 1;
		} else if (strcmp(k, "deny_ip") == 0) {
			rc = parse_cidrs(ctx, k, v, &p->deny, &p->ndeny);
		} else if (strcmp(k, "rcpt_domains") == 0) {
			rc = parse_domains(ctx, p, v);
		} else if (strcmp(k, "deny_senders") == 0) {
			if (v[0] == '\0') {
				sh_error(ctx, "deny_senders: a file name is required");
				rc = -1;
			} else {
				rc = parse_senders(ctx, p, v);
			}
		} else if (strcmp(k, "require_helo") == 0) {
			rc = parse_flag(ctx, k, v, &p->require_helo);
		} else if (strcmp(k, "reject_ip_helo") == 0) {
			rc = parse_flag(ctx, k, v, &p->reject_ip_helo);
		}
	}
	if (rc < 0) {
		policy_free(p);
		return -1;
	}
	sh_plugin_set(ctx, p);
	return 0;
}

static void
policy_fini(sh_ctx *ctx)
{
	policy_free(sh_plugin_get(ctx));
	sh_plugin_set(ctx, NULL);
}

/* ---- hooks --------------------------------------------------------- */

/* peer_ip - the client's address; -1 when it is not numeric (it always
 * is for TCP) */
static int
peer_ip(sh_ctx *ctx, sh_cidr *ip)
{
	const sh_session_info *si = sh_session(ctx);

	if (si == NULL || si->peer_addr == NULL)
		return -1;
	return sh_ip_parse(si->peer_addr, strlen(si->peer_addr), ip);
}

static sh_verdict
policy_connect(sh_ctx *ctx)
{
	const struct policy *p = sh_plugin_get(ctx);
	const sh_session_info *si = sh_session(ctx);
	char rule[SH_CIDR_STRLEN];
	sh_cidr ip;
	int hit;

	if (!p->have_allow && p->ndeny == 0)
		return SH_CONTINUE;
	if (peer_ip(ctx, &ip) < 0) {
		/* Fail closed only where a list says who may come. */
		if (!p->have_allow)
			return SH_CONTINUE;
		sh_log(ctx, SH_LOG_WARN, "client address '%s' is not numeric: refused",
		    si->peer_addr);
		return sh_reject(ctx, 554, "5.7.1", "%s Client address not allowed",
		    si->hostname);
	}
	/* Deny wins: allow 10.0.0.0/8 with deny 10.9.0.0/16 carves a hole. */
	if ((hit = cidr_list_match(p->deny, p->ndeny, &ip)) != 0) {
		sh_log(ctx, SH_LOG_INFO, "client %s refused: deny_ip %s", si->peer_addr,
		    sh_cidr_format(&p->deny[hit - 1], rule, sizeof(rule)));
		return sh_reject(ctx, 554, "5.7.1", "%s Client address denied: [%s]",
		    si->hostname, si->peer_addr);
	}
	if (p->have_allow && !cidr_list_match(p->allow, p->nallow, &ip)) {
		sh_log(ctx, SH_LOG_INFO, "client %s refused: not in allow_ip", si->peer_addr);
		return sh_reject(ctx, 554, "5.7.1", "%s Client address not allowed: [%s]",
		    si->hostname, si->peer_addr);
	}
	return SH_CONTINUE;
}

/*
 * helo_ip - the address in a HELO/EHLO name: a bare one ("192.0.2.7") or
 * an address literal ("[192.0.2.7]", "[IPv6:2001:db8::7]", RFC 5321
 * §4.1.3).  Returns 1 and *ip, or 0 when the name is not an address.
 */
static int
helo_ip(const char *name, sh_cidr *ip)
{
	size_t len = strlen(name);

	if (len >= 2 && name[0] == '[' && name[len - 1] == ']') {
		name++;
		len -= 2;
		if (len >= 5 && sh_ascii_caseeq(name, 5, "IPv6:", 5)) {
			name += 5;
			len -= 5;
		}
	}
	return sh_ip_parse(name, len, ip) == 0;
}

/* literal_of - the client's address as an address literal, for advice */
static void
literal_of(const sh_cidr *ip, char *buf, size_t size)
{
	char text[SH_CIDR_STRLEN];

	sh_cidr_format(ip, text, sizeof(text));
	snprintf(buf, size, ip->family == SH_CIDR_V4 ? "[%s]" : "[IPv6:%s]", text);
}

static sh_verdict
policy_helo(sh_ctx *ctx, const char *name, int extended)
{
	const struct policy *p = sh_plugin_get(ctx);
	const char *verb = extended ? "EHLO" : "HELO";
	char lit[SH_CIDR_STRLEN + 8] = "";
	sh_cidr ip, claimed;
	int have_peer = peer_ip(ctx, &ip) == 0;

	if (have_peer)
		literal_of(&ip, lit, sizeof(lit));
	if (p->reject_ip_helo && helo_ip(name, &claimed) &&
	    !(have_peer && sh_cidr_match(&ip, &claimed))) {
		sh_log(ctx, SH_LOG_INFO, "%s %s refused: not the client's address", verb,
		    name);
		return sh_reject(ctx, 550, "5.7.1", "%s %s refused: that address is "
		    "not yours%s%s", verb, name, have_peer ? ", use " : "", lit);
	}
	/* The host checked the syntax of an address literal already. */
	if (p->require_helo && name[0] != '[' &&
	    sh_domain_check(name, strlen(name), SH_DOMAIN_FQDN) < 0) {
		sh_log(ctx, SH_LOG_INFO, "%s %s refused: not a fully-qualified name", verb,
		    name);
		return sh_reject(ctx, 501, "5.5.2", "%s %s refused: give your "
		    "fully-qualified host name or an address literal%s%s", verb, name,
		    have_peer ? " such as " : "", lit);
	}
	return SH_CONTINUE;
}

static sh_verdict
policy_mail(sh_ctx *ctx, const sh_address *sender)
{
	const struct policy *p = sh_plugin_get(ctx);
	const char *a = sender->address;

	if (p->senders_text == NULL || a[0] == '\0')
		return SH_CONTINUE;	/* no list; the null sender <> */
	if (in_sorted(p->senders, p->nsenders, a, strlen(a))) {
		sh_log(ctx, SH_LOG_INFO, "sender <%s> refused: deny_senders address", a);
		return sh_reject(ctx, 550, "5.7.1", "<%s>: Sender address rejected: "
		    "this address is not allowed to send here", a);
	}
	if (sender->domain[0] != '\0' && domset_match(&p->sender_domains, sender->domain)) {
		sh_log(ctx, SH_LOG_INFO, "sender <%s> refused: deny_senders domain", a);
		return sh_reject(ctx, 550, "5.7.1", "<%s>: Sender address rejected: "
		    "senders in domain %s are not allowed to send here", a,
		    sender->domain);
	}
	return SH_CONTINUE;
}

static sh_verdict
policy_rcpt(sh_ctx *ctx, const sh_address *rcpt)
{
	const struct policy *p = sh_plugin_get(ctx);

	if (!p->have_rcpt)
		return SH_CONTINUE;
	/* RFC 5321 §4.5.1: <Postmaster> without a domain must be accepted. */
	if (rcpt->domain[0] == '\0' &&
	    sh_ascii_caseeq(rcpt->local, strlen(rcpt->local), "postmaster", 10))
		return SH_CONTINUE;
	if (rcpt->domain[0] != '\0' && domset_match(&p->rcpt, rcpt->domain))
		return SH_CONTINUE;
	sh_log(ctx, SH_LOG_INFO, "recipient <%s> refused: domain not in rcpt_domains",
	    rcpt->address);
	return sh_reject(ctx, 550, "5.7.1", "<%s>: Relay access denied: recipient "
	    "domain %s is not served here", rcpt->address,
	    rcpt->domain[0] != '\0' ? rcpt->domain : "(none)");
}

SH_PLUGIN_DEFINE(
	.name = "policy",
	.version = "1.0",
	.arg_keys = policy_keys,
	.init = policy_init,
	.fini = policy_fini,
	.connect = policy_connect,
	.helo = policy_helo,
	.mail = policy_mail,
	.rcpt = policy_rcpt,
	/* rcpt_domains= refuses recipients of other domains (550 5.7.1). */
	.roles = SH_ROLE_RESTRICTS_RCPTS,
);
