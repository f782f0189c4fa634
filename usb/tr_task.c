/* tr_task.c - cooperative tasks on one transport context (see tr_task.h).
 *
 * Each task has an mmap'd stack with a guard page below it; the scheduler
 * (tr_tasks_run) lives on the caller's stack. Switches happen only in
 * tr_task_yield (task -> scheduler), in the scheduler's pass over runnable
 * tasks (scheduler -> task), and when a task's function returns (back to the
 * scheduler for good; it frees the stack).
 *
 * The switch: on x86-64 a dozen instructions (sw_x86 below: the SysV
 * callee-saved registers, the SSE/x87 control words and the stack pointer),
 * because glibc's swapcontext also saves the signal mask with a system call
 * each time - a third of the CPU with 64 devices. Elsewhere ucontext.
 *
 * Under AddressSanitizer the switches are announced to it
 * (__sanitizer_start/finish_switch_fiber), so it follows the stacks. */
#include "usb/tr_task.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define TR_ASAN_FIBERS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TR_ASAN_FIBERS 1
#endif
#endif
#ifdef TR_ASAN_FIBERS
#include <sanitizer/common_interface_defs.h>
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#define TR_SW_ASM 1
/* sw_x86(from, to): push the callee-saved registers and the control words,
 * store the stack pointer in *from, load *to's and pop its. A new task's
 * stack is prepared so that the first switch "returns" into sw_x86_entry,
 * which calls r12(rbx). */
__asm__(".text\n"
	".p2align 4\n"
	".type lp_tr_sw_x86,@function\n"
	"lp_tr_sw_x86:\n"
	"\tpushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n"
	"\tsubq $8, %rsp\n\tstmxcsr (%rsp)\n\tfnstcw 4(%rsp)\n"
	"\tmovq %rsp, (%rdi)\n"
	"\tmovq (%rsi), %rsp\n"
	"\tldmxcsr (%rsp)\n\tfldcw 4(%rsp)\n\taddq $8, %rsp\n"
	"\tpopq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n"
	"\tret\n"
	".size lp_tr_sw_x86, .-lp_tr_sw_x86\n"
	".p2align 4\n"
	".type lp_tr_sw_x86_entry,@function\n"
	"lp_tr_sw_x86_entry:\n"
	"\tmovq %rbx, %rdi\n"
	"\tcallq *%r12\n"
	"\tud2\n"
	".size lp_tr_sw_x86_entry, .-lp_tr_sw_x86_entry\n");
void lp_tr_sw_x86(void **from_sp, void *const *to_sp) __asm__("lp_tr_sw_x86");
void lp_tr_sw_x86_entry(void) __asm__("lp_tr_sw_x86_entry");
#endif

struct tr_task {
	struct tr_tasks *ts;
#ifdef TR_SW_ASM
	void *sp;
#else
	ucontext_t uc;
#endif
	void *map; /* guard page + stack */
	size_t map_len;
	tr_task_fn fn;
	void *arg;
	uint64_t wake_at; /* blocked: resume at this time at the latest */
	bool runnable, done;
	struct tr_task *next;
#ifdef TR_ASAN_FIBERS
	void *fake_stack;
#endif
};

struct tr_tasks {
	struct tr_ctx *ctx;
#ifdef TR_SW_ASM
	void *main_sp;
#else
	ucontext_t main_uc;
#endif
	struct tr_task *list; /* every live task */
	struct tr_task *cur;  /* running now, NULL in the scheduler */
	size_t live;
	bool running;
#ifdef TR_ASAN_FIBERS
	const void *main_bottom;
	size_t main_size;
	void *main_fake;
#endif
};

static size_t page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);
	return p > 0 ? (size_t)p : 4096;
}

int tr_tasks_new(struct tr_ctx *ctx, struct tr_tasks **out, struct lp_errinfo *e)
{
	struct tr_tasks *ts;

	if (!ctx || !out)
		return lp_err_set(e, LP_EINVAL, "tr_tasks_new: bad arguments");
	if (ctx->tasks)
		return lp_err_set(e, LP_EBUSY, "tr_tasks_new: the context has a scheduler");
	ts = calloc(1, sizeof(*ts));
	if (!ts)
		return lp_err_set(e, LP_ENOMEM, "tr_tasks_new: out of memory");
	ts->ctx = ctx;
	ctx->tasks = ts;
	*out = ts;
	return 0;
}

static void task_free(struct tr_task *t)
{
	if (t->map)
		munmap(t->map, t->map_len);
	free(t);
}

void tr_tasks_free(struct tr_tasks *ts)
{
	if (!ts)
		return;
	while (ts->list) {
		struct tr_task *t = ts->list;
		ts->list = t->next;
		task_free(t);
	}
	if (ts->ctx && ts->ctx->tasks == ts)
		ts->ctx->tasks = NULL;
	free(ts);
}

size_t tr_tasks_live(const struct tr_tasks *ts)
{
	return ts ? ts->live : 0;
}

static void task_main(struct tr_task *t)
{
	struct tr_tasks *ts = t->ts;

#ifdef TR_ASAN_FIBERS
	__sanitizer_finish_switch_fiber(NULL, &ts->main_bottom, &ts->main_size);
#endif
	t->fn(t->arg);
	t->done = true;
#ifdef TR_ASAN_FIBERS
	/* this stack is about to be freed: no fake stack to keep */
	__sanitizer_start_switch_fiber(NULL, ts->main_bottom, ts->main_size);
#endif
#ifdef TR_SW_ASM
	lp_tr_sw_x86(&t->sp, &ts->main_sp); /* never resumed */
	__builtin_trap();
#endif
	/* ucontext: returning follows uc_link back to the scheduler */
}

#ifdef TR_SW_ASM
static int prepare(struct tr_task *t, char *stack, size_t size)
{
	uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)(top - 64);

	/* what lp_tr_sw_x86 pops: control words, r15, r14, r13, r12, rbx,
	 * rbp, then the return address; rsp ends 16-aligned at the entry */
	sp[0] = 0x1f80u | (uint64_t)0x037fu << 32; /* MXCSR and x87 defaults */
	sp[1] = sp[2] = sp[3] = 0;
	sp[4] = (uint64_t)(uintptr_t)task_main;
	sp[5] = (uint64_t)(uintptr_t)t;
	sp[6] = 0;
	sp[7] = (uint64_t)(uintptr_t)lp_tr_sw_x86_entry;
	t->sp = sp;
	return 0;
}
#else
/* makecontext passes ints: the task pointer travels in two halves */
static void trampoline(unsigned hi, unsigned lo)
{
	task_main((struct tr_task *)(((uintptr_t)hi << 16 << 16) | (uintptr_t)lo));
}

/* getcontext only fills uc for makecontext here (nothing ever resumes the
 * context it saved), so it lives out of the caller's frame: no variable of
 * the caller is live across a "second return". */
static __attribute__((noinline)) int fresh_context(ucontext_t *uc)
{
	return getcontext(uc);
}

static int prepare(struct tr_task *t, char *stack, size_t size)
{
	uintptr_t v = (uintptr_t)t;

	if (fresh_context(&t->uc))
		return -1;
	t->uc.uc_stack.ss_sp = stack;
	t->uc.uc_stack.ss_size = size;
	t->uc.uc_link = &t->ts->main_uc;
	makecontext(&t->uc, (void (*)(void))trampoline, 2, (unsigned)(v >> 16 >> 16),
		    (unsigned)(v & 0xffffffffu));
	return 0;
}
#endif

/* switch from the running task to the scheduler, and back */
static void switch_to_main(struct tr_task *t)
{
#ifdef TR_SW_ASM
	lp_tr_sw_x86(&t->sp, &t->ts->main_sp);
#else
	swapcontext(&t->uc, &t->ts->main_uc);
#endif
}

static void switch_to_task(struct tr_task *t)
{
#ifdef TR_SW_ASM
	lp_tr_sw_x86(&t->ts->main_sp, &t->sp);
#else
	swapcontext(&t->ts->main_uc, &t->uc);
#endif
}

int tr_task_spawn(struct tr_tasks *ts, tr_task_fn fn, void *arg, struct lp_errinfo *e)
{
	size_t pg = page_size(), len = TR_TASK_STACK + pg;
	struct tr_task *t;

	if (!ts || !fn)
		return lp_err_set(e, LP_EINVAL, "tr_task_spawn: bad arguments");
	if (ts->live >= TR_TASK_MAX)
		return lp_err_set(e, LP_ETOOBIG, "tr_task_spawn: %d tasks already", TR_TASK_MAX);
	t = calloc(1, sizeof(*t));
	if (!t)
		return lp_err_set(e, LP_ENOMEM, "tr_task_spawn: out of memory");
	t->map = mmap(NULL, len, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (t->map == MAP_FAILED) {
		free(t);
		return lp_err_set(e, LP_ENOMEM, "tr_task_spawn: no memory for a stack");
	}
	t->map_len = len;
	/* the page below the stack faults instead of overflowing into the heap */
	if (mprotect(t->map, pg, PROT_NONE)) {
		task_free(t);
		return lp_err_set(e, LP_ENOMEM, "tr_task_spawn: cannot place a guard page");
	}
	t->ts = ts;
	t->fn = fn;
	t->arg = arg;
	if (prepare(t, (char *)t->map + pg, TR_TASK_STACK)) {
		task_free(t);
		return lp_err_set(e, LP_EIO, "tr_task_spawn: cannot make a context");
	}
	t->runnable = true;
	t->next = ts->list;
	ts->list = t;
	ts->live++;
	return 0;
}

bool tr_in_task(const struct tr_ctx *ctx)
{
	return ctx && ctx->tasks && ctx->tasks->cur;
}

bool tr_task_yield(struct tr_ctx *ctx, uint64_t deadline)
{
	struct tr_tasks *ts = ctx ? ctx->tasks : NULL;
	struct tr_task *t = ts ? ts->cur : NULL;

	if (!t)
		return false;
	t->wake_at = deadline;
	t->runnable = false;
#ifdef TR_ASAN_FIBERS
	__sanitizer_start_switch_fiber(&t->fake_stack, ts->main_bottom, ts->main_size);
#endif
	switch_to_main(t);
#ifdef TR_ASAN_FIBERS
	__sanitizer_finish_switch_fiber(t->fake_stack, &ts->main_bottom, &ts->main_size);
#endif
	return true;
}

void tr_sleep_until(struct tr_ctx *ctx, uint64_t t)
{
	if (!ctx)
		return;
	while (lp_clock_now(ctx->env.clock) < t) {
		if (!tr_task_yield(ctx, t)) {
			lp_clock_sleep_until(ctx->env.clock, t);
			return;
		}
	}
}

void tr_task_adopt_dev(struct tr_dev *dev)
{
	struct tr_tasks *ts = dev && dev->ctx ? dev->ctx->tasks : NULL;

	dev->task = ts ? ts->cur : NULL;
}

void tr_task_wake_dev(struct tr_dev *dev)
{
	struct tr_tasks *ts = dev && dev->ctx ? dev->ctx->tasks : NULL;

	if (!ts || !dev->task)
		return;
	/* only a task still alive: a device left open by a task that ended
	 * (or outlived its scheduler) wakes nobody */
	for (struct tr_task *t = ts->list; t; t = t->next) {
		if (t == dev->task) {
			t->runnable = true;
			return;
		}
	}
}

/* Resume t until it yields or returns; reap it if it returned. */
static void resume(struct tr_tasks *ts, struct tr_task *t)
{
	t->runnable = false;
	ts->cur = t;
#ifdef TR_ASAN_FIBERS
	__sanitizer_start_switch_fiber(&ts->main_fake, (char *)t->map + page_size(), TR_TASK_STACK);
#endif
	switch_to_task(t);
#ifdef TR_ASAN_FIBERS
	__sanitizer_finish_switch_fiber(ts->main_fake, NULL, NULL);
#endif
	ts->cur = NULL;
}

static void reap(struct tr_tasks *ts)
{
	for (struct tr_task **pp = &ts->list; *pp;) {
		struct tr_task *t = *pp;
		if (t->done) {
			*pp = t->next;
			/* devices it still owns wake nobody (tr_task_wake_dev) */
			task_free(t);
			ts->live--;
		} else {
			pp = &t->next;
		}
	}
}

int tr_tasks_run(struct tr_tasks *ts)
{
	struct tr_ctx *ctx;
	int rc = 0;

	if (!ts || ts->cur || ts->running)
		return LP_EINVAL;
	ctx = ts->ctx;
	ts->running = true;
	while (ts->live) {
		uint64_t now, dl = UINT64_MAX;
		bool any = false;

		/* one pass over the runnable tasks (spawned ones join the next) */
		for (struct tr_task *t = ts->list; t; t = t->next)
			if (t->runnable && !t->done)
				resume(ts, t);
		reap(ts);
		if (!ts->live)
			break;
		now = lp_clock_now(ctx->env.clock);
		for (struct tr_task *t = ts->list; t; t = t->next) {
			if (t->runnable) {
				any = true;
			} else if (t->wake_at <= now) {
				t->runnable = true;
				any = true;
			} else if (t->wake_at < dl) {
				dl = t->wake_at;
			}
		}
		/* with tasks ready, only collect what is due now */
		rc = ctx->ops->handle_events(ctx, any ? now : dl);
		if (rc < 0)
			break;
	}
	ts->running = false;
	return rc < 0 ? rc : 0;
}
