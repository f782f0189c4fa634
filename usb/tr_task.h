/* tr_task.h - cooperative tasks on one transport context: many devices driven
 * at once by the blocking-style code above the transport (host link,
 * lockdown, the cable test, watch's probes), on one thread and one event
 * loop - no thread per device.
 *
 * A task is a function run on a stack of its own (ucontext). Whenever code in
 * a task would wait on the transport - tr_handle_events(), tr_xfer_sync()
 * and the helpers on it, tr_wait_hotplug(), tr_sleep_until() - it yields
 * instead, with its deadline. tr_tasks_run() then waits once for all of
 * them: the backend's handle_events up to the earliest deadline, and resumes
 * the tasks whose devices saw a completion or whose deadline has come. A
 * task runs only between its waits, so nothing runs concurrently and nothing
 * needs a lock; each task sees its waits end as they would alone (at a
 * completion or the deadline; callers already loop on their condition).
 *
 * A device opened (tr_open) inside a task belongs to that task: its
 * completions wake it. Waits outside any task behave exactly as before.
 *
 * Reference for the model: the classic coroutine schedulers over one poll
 * loop (e.g. Plan 9's libthread, Go's netpoller) - written here for ucontext.
 */
#ifndef LP_TR_TASK_H
#define LP_TR_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "usb/transport.h"

#define TR_TASK_STACK (256u << 10) /* reserved per task; only touched pages cost memory */
#define TR_TASK_MAX 1024	   /* tasks alive at once on one context */
/* How often a task waiting for hotplug looks again (tr_wait_hotplug in a
 * task: the scheduler has one wait for everything). */
#define TR_TASK_HOTPLUG_POLL_NS (100 * LP_NS_PER_MS)

struct tr_tasks;
typedef void (*tr_task_fn)(void *arg);

/* A scheduler for ctx (borrowed; one per context at a time). *out owned
 * (tr_tasks_free). */
int tr_tasks_new(struct tr_ctx *ctx, struct tr_tasks **out, struct lp_errinfo *e);
/* Free the scheduler; tasks that never finished are dropped (their stacks
 * freed without unwinding: only after tr_tasks_run returned). NULL ok. */
void tr_tasks_free(struct tr_tasks *ts);
/* Start fn(arg) as a task; it first runs at the next pass of tr_tasks_run.
 * Callable from the main flow or from a task. LP_ENOMEM, LP_ETOOBIG (past
 * TR_TASK_MAX). */
int tr_task_spawn(struct tr_tasks *ts, tr_task_fn fn, void *arg, struct lp_errinfo *e);
/* Run every task until all have returned (tasks may spawn more). 0, or a
 * negative lp_err from the backend's handle_events. Not from inside a task. */
int tr_tasks_run(struct tr_tasks *ts);
/* Tasks spawned and not yet returned. */
size_t tr_tasks_live(const struct tr_tasks *ts);

/* Is the caller running inside a task of ctx? */
bool tr_in_task(const struct tr_ctx *ctx);
/* Let time pass until t (ctx's clock): in a task, yield until then; outside,
 * lp_clock_sleep_until (a virtual clock jumps). */
void tr_sleep_until(struct tr_ctx *ctx, uint64_t t);

/* For usb/transport.c only. In a task: yield until a completion on one of
 * the task's devices or the deadline, and return true; outside a task
 * return false at once. */
bool tr_task_yield(struct tr_ctx *ctx, uint64_t deadline);
/* A device is being opened: in a task it becomes the task's. */
void tr_task_adopt_dev(struct tr_dev *dev);
/* A transfer on dev completed: make its task runnable, if that task is
 * still alive on ctx's scheduler. */
void tr_task_wake_dev(struct tr_dev *dev);

#endif
