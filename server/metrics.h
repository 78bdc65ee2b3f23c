/*
 * metrics.h - plugin metrics kept in memory: what the host counts per
 * plugin and hook, and the counters plugins register (sh_counter)
 *
 * The server embeds one struct metrics, sizes it once all plugins are
 * added (metrics_init, before their init runs) and frees it after every
 * plugin's fini and the pool's last job (metrics_free).  The hook
 * statistics are plain integers written on the loop thread only; a
 * counter's value is the one thing pool threads write, with relaxed
 * atomic adds.  Nothing here logs on its own except
 * metrics_api_counter_register(), the host API's side of
 * sh_counter_register(); nothing starts timers or reads clocks: the
 * caller measures and passes nanoseconds in.
 *
 * Output is text, one line per plugin x hook that saw a call and one per
 * counter (metrics_each_line, metrics_render), for `--check -v` and a
 * debug log line at shutdown; a Prometheus endpoint comes later and can
 * read the same data (metrics_hook, metrics_counter_at).
 */
#ifndef METRICS_H
#define METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "smtphook.h"

/* Hook indexes: the verdict hooks by sh_hook_id, then the two
 * notifications that have no sh_hook_id. */
#define METRICS_HOOK_RESET	SH_HOOK_COUNT_V1
#define METRICS_HOOK_DISCONNECT	(SH_HOOK_COUNT_V1 + 1)
#define METRICS_NHOOKS		(SH_HOOK_COUNT_V1 + 2)

#define METRICS_NVERDICTS	5	/* CONTINUE .. DISCONNECT, by value */
#define METRICS_COUNTERS_MAX	64	/* per plugin */
#define METRICS_NAME_MAX	63	/* octets of a counter name */
#define METRICS_HELP_MAX	159	/* octets of a counter's help text */
/* Longest line metrics_each_line() makes: 11 numbers of at most 20
 * digits, the plugin's name cut at 64, the keys: about 420 octets. */
#define METRICS_LINE_MAX	512

/*
 * hook_stats - one plugin's numbers for one hook.
 *	calls		hook calls (verdict hooks and notifications)
 *	verdicts	final verdicts by sh_verdict value, whether answered
 *			at once or after PENDING (on_timeout= included);
 *			never counted for the notifications
 *	pendings	calls that answered SH_PENDING
 *	timeouts	pendings whose timeout= expired
 *	stalls		calls that kept the loop busy over the warn limit
 *	time_ns		time spent inside the hook call, on the loop
 *	pending_ns	time from PENDING until the verdict or the timeout
 * A pending verdict abandoned because the client left is in pendings
 * and in none of verdicts / timeouts.
 */
struct hook_stats {
	uint64_t calls;
	uint64_t verdicts[METRICS_NVERDICTS];
	uint64_t pendings, timeouts, stalls;
	uint64_t time_ns, pending_ns;
};

struct metrics_plugin {
	sh_counter *counters[METRICS_COUNTERS_MAX];	/* each its own block */
	size_t ncounters;
};

struct metrics {
	size_t nplugins;
	struct hook_stats *hooks;	/* [nplugins][METRICS_NHOOKS] */
	struct metrics_plugin *plugins;	/* [nplugins] */
};

/* A counter as metrics_counter_at() shows it; the strings live as long
 * as the struct metrics. */
struct metrics_counter_view {
	const char *name;
	const char *help;
	uint64_t value;
};

/* metrics_init - zeroed statistics for nplugins plugins; 0, or -1 (no
 * memory, *m then holds nothing to free) */
int metrics_init(struct metrics *m, size_t nplugins);
/* metrics_free - release everything, counters included: call it only
 * when no plugin code can run any more (after fini and the pool).
 * Harmless on a zeroed or already freed struct. */
void metrics_free(struct metrics *m);

/* metrics_hook_name - "connect" .. "expn", "reset", "disconnect", or "?" */
const char *metrics_hook_name(unsigned hook);

/*
 * metrics_hook_call - account one call of plugin's hook that returned v
 * after ns nanoseconds on the loop; stalled: it went over the warn
 * limit.  SH_PENDING counts as a pending, not as a verdict (its verdict
 * comes with metrics_hook_settled); for METRICS_HOOK_RESET and
 * METRICS_HOOK_DISCONNECT v is ignored.  Out-of-range plugin or hook,
 * or a verdict that is none of sh_verdict's values: nothing counted
 * but the call.  Loop thread only.
 */
void metrics_hook_call(struct metrics *m, size_t plugin, unsigned hook,
    sh_verdict v, uint64_t ns, int stalled);
/*
 * metrics_hook_settled - a verdict v of plugin's hook that was pending
 * arrived (timed_out 0) or was replaced by on_timeout= (timed_out 1)
 * after pending_ns nanoseconds.  Loop thread only.
 */
void metrics_hook_settled(struct metrics *m, size_t plugin, unsigned hook,
    sh_verdict v, uint64_t pending_ns, int timed_out);
/* metrics_hook - the numbers of plugin's hook, or NULL out of range */
const struct hook_stats *metrics_hook(const struct metrics *m, size_t plugin,
    unsigned hook);

/*
 * metrics_counter_register - a new counter of plugin, value 0, or NULL
 * with a one-line reason in err (naming plugin_name and the counter):
 * a name outside [a-zA-Z_][a-zA-Z0-9_]* or over METRICS_NAME_MAX
 * octets, help not printable ASCII or over METRICS_HELP_MAX octets
 * (NULL help is ""), a name the plugin already registered, the
 * plugin's METRICS_COUNTERS_MAX used up, a plugin out of range, no
 * memory.  The counter never moves until metrics_free().  Loop thread.
 */
sh_counter *metrics_counter_register(struct metrics *m, size_t plugin,
    const char *plugin_name, const char *name, const char *help, char *err,
    size_t errsize);
/* metrics_counter_add - add n to c (NULL: nothing).  Any thread: a
 * relaxed atomic add; readers only need the total to be exact. */
void metrics_counter_add(sh_counter *c, uint64_t n);
/* metrics_counter_at - the k-th counter of plugin in registration
 * order: 0 and *out filled, or -1 past the end */
int metrics_counter_at(const struct metrics *m, size_t plugin, size_t k,
    struct metrics_counter_view *out);

/*
 * metrics_api_counter_register - the host API's sh_counter_register():
 * metrics_counter_register() plus the rule "in init only" (in_init 0:
 * refused), logging the reason of a refusal as an error.  NULL then.
 */
sh_counter *metrics_api_counter_register(struct metrics *m, size_t plugin,
    const char *plugin_name, int in_init, const char *name, const char *help);

/*
 * metrics_each_line - call fn(arg, line) for each line of the text form,
 * in chain order: per plugin, one line per hook with calls (hook id
 * order, then reset, disconnect), then one per counter (registration
 * order).  plugin_names[i] names plugin i (NULL array or entry: "?");
 * names are shown with octets outside '!'..'~' as '?' and cut at 64.
 * The line has no newline and lives for the call only.
 *	plugin=P hook=H calls=N continue=N accept=N reject=N tempfail=N
 *	    disconnect=N pendings=N timeouts=N stalls=N time_ms=M.MMM
 *	    pending_ms=M.MMM			(one line)
 *	plugin=P counter=NAME value=N
 * Milliseconds are cut, not rounded, to whole microseconds.
 */
void metrics_each_line(const struct metrics *m, const char *const *plugin_names,
    void (*fn)(void *arg, const char *line), void *arg);
/*
 * metrics_log - log each line at debug level as "metrics: LINE" (does
 * nothing unless debug logging is on, -v): the server calls it once,
 * after every plugin's fini, so the shutdown and `--check -v` show the
 * same numbers.
 */
void metrics_log(const struct metrics *m, const char *const *plugin_names);
/*
 * metrics_render - the same lines, each ending in '\n', into buf: only
 * whole lines, always NUL-terminated when bufsize > 0.  Returns the
 * length of the whole text (as snprintf does): >= bufsize means lines
 * were left out.
 */
size_t metrics_render(const struct metrics *m, const char *const *plugin_names,
    char *buf, size_t bufsize);

#endif
