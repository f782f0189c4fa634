/* test_tr_task.c - several simulated devices on one bus (usb/tr_sim.c ports,
 * churn) and cooperative tasks driving them at once on one event loop
 * (usb/tr_task.c), on a virtual clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "src/device/simdev.h"
#include "usb/tr_sim.h"
#include "usb/tr_task.h"
#include "usb/transport.h"

#define NDEV 3

struct bus {
	struct lp_clock clk;
	struct lp_rand rnd;
	struct simdev *s[NDEV];
	struct tr_sim_port ports[NDEV];
	struct tr_sim_arg arg;
	struct tr_ctx *ctx;
};

static void bus_open(struct bus *b, size_t n, uint64_t churn_period, uint64_t churn_gap)
{
	struct tr_env env;

	memset(b, 0, sizeof(*b));
	lp_clock_init_virtual(&b->clk, 0);
	lp_rand_seed(&b->rnd, 1);
	for (size_t i = 0; i < n; i++) {
		struct simdev_opts o = {.seed = 10 + i};

		b->s[i] = simdev_new("healthy", &o, &b->clk, NULL, NULL);
		assert_non_null(b->s[i]);
		b->ports[i].ops = &devcore_model_ops;
		b->ports[i].model = simdev_model(b->s[i]);
		assert_int_equal(simdev_link(b->s[i], &b->ports[i].link), 0);
		b->ports[i].link.churn_period_ns = churn_period;
		b->ports[i].link.churn_gap_ns = churn_gap;
		b->ports[i].link.churn_first_ns = churn_period ? churn_period * (i + 1) / (n + 1)
							       : 0;
	}
	b->arg.ports = b->ports;
	b->arg.nports = n;
	env.clock = &b->clk;
	env.log = NULL;
	env.rand = &b->rnd;
	assert_int_equal(tr_ctx_new(&tr_sim_ops, &env, &b->arg, &b->ctx, NULL), 0);
}

static void bus_close(struct bus *b)
{
	tr_ctx_free(b->ctx);
	for (size_t i = 0; i < NDEV; i++)
		simdev_free(b->s[i]);
}

static void test_ports_listed_apart(void **state)
{
	struct bus b;
	struct tr_devinfo d[8];
	size_t n = 0;

	(void)state;
	bus_open(&b, NDEV, 0, 0);
	assert_int_equal(tr_list(b.ctx, d, 8, &n, NULL), 0);
	assert_int_equal(n, NDEV);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = i + 1; j < n; j++) {
			assert_int_not_equal(d[i].addr, d[j].addr);
			assert_int_not_equal(d[i].session, d[j].session);
			assert_string_not_equal(d[i].port_path, d[j].port_path);
		}
	}
	assert_string_equal(d[0].port_path, "1-1.1");
	assert_string_equal(d[2].port_path, "1-1.3");
	/* max honoured */
	assert_int_equal(tr_list(b.ctx, d, 2, &n, NULL), 0);
	assert_int_equal(n, 2);
	bus_close(&b);
}

/* churn: every device leaves for the gap once per period and comes back as a
 * new attachment (address and session), on the same port */
static void test_churn(void **state)
{
	struct bus b;
	struct tr_devinfo d[8], before[8];
	struct tr_sim_stats st;
	size_t n = 0;

	(void)state;
	bus_open(&b, NDEV, 1000 * LP_NS_PER_MS, 100 * LP_NS_PER_MS);
	assert_int_equal(tr_list(b.ctx, before, 8, &n, NULL), 0);
	assert_int_equal(n, NDEV);
	/* device 0 leaves at 250 ms, back at 350 ms */
	lp_clock_sleep_until(&b.clk, 300 * LP_NS_PER_MS);
	assert_int_equal(tr_list(b.ctx, d, 8, &n, NULL), 0);
	assert_int_equal(n, NDEV - 1);
	assert_string_equal(d[0].port_path, "1-1.2");
	lp_clock_sleep_until(&b.clk, 400 * LP_NS_PER_MS);
	assert_int_equal(tr_list(b.ctx, d, 8, &n, NULL), 0);
	assert_int_equal(n, NDEV);
	assert_string_equal(d[0].port_path, "1-1.1");
	assert_int_not_equal(d[0].session, before[0].session);
	assert_int_not_equal(d[0].addr, before[0].addr);
	/* a long jump plays every cycle: 10 s = 10 departures each */
	lp_clock_sleep_until(&b.clk, 10200 * LP_NS_PER_MS);
	assert_int_equal(tr_list(b.ctx, d, 8, &n, NULL), 0);
	assert_int_equal(n, NDEV);
	assert_int_equal(tr_sim_port_stats(b.ctx, 1, &st), 0);
	assert_int_equal(st.disconnects, 10);
	assert_int_equal(st.enumerations, 11);
	tr_sim_get_stats(b.ctx, &st);
	assert_int_equal(st.disconnects, 30);
	assert_int_equal(tr_sim_port_stats(b.ctx, NDEV, &st), LP_ENOENT);
	bus_close(&b);
}

struct job {
	struct tr_ctx *ctx;
	struct tr_devinfo info;
	int rounds, ok;
	uint64_t end;
};

static void job_fn(void *arg)
{
	struct job *j = arg;
	struct tr_dev *dev = NULL;
	uint8_t desc[18];

	if (tr_open(j->ctx, &j->info, &dev, NULL))
		return;
	for (int i = 0; i < j->rounds; i++) {
		size_t got = 0;
		if (tr_control_sync(dev, 0x80, 6, 0x0100, 0, desc, sizeof(desc), 500, &got) == 0 &&
		    got == sizeof(desc))
			j->ok++;
	}
	j->end = lp_clock_now(j->ctx->env.clock);
	tr_close(dev);
}

/* three devices, each with a task doing 10 control transfers: they run at
 * once, so it takes the time one device needs, not three times it */
static void test_tasks_concurrent(void **state)
{
	struct bus b;
	struct tr_devinfo d[8];
	struct job jobs[NDEV];
	struct tr_tasks *ts = NULL;
	uint64_t alone;
	size_t n = 0;

	(void)state;
	bus_open(&b, NDEV, 0, 0);
	assert_int_equal(tr_list(b.ctx, d, 8, &n, NULL), 0);
	/* one device alone, outside any task */
	memset(&jobs[0], 0, sizeof(jobs[0]));
	jobs[0] = (struct job){.ctx = b.ctx, .info = d[0], .rounds = 10};
	job_fn(&jobs[0]);
	assert_int_equal(jobs[0].ok, 10);
	alone = jobs[0].end;
	assert_true(alone >= 10 * 300 * LP_NS_PER_US);

	lp_clock_sleep_until(&b.clk, LP_NS_PER_S);
	assert_int_equal(tr_tasks_new(b.ctx, &ts, NULL), 0);
	assert_int_equal(tr_tasks_new(b.ctx, &(struct tr_tasks *){NULL}, NULL), LP_EBUSY);
	for (size_t i = 0; i < NDEV; i++) {
		jobs[i] = (struct job){.ctx = b.ctx, .info = d[i], .rounds = 10};
		assert_int_equal(tr_task_spawn(ts, job_fn, &jobs[i], NULL), 0);
	}
	assert_int_equal(tr_tasks_live(ts), NDEV);
	assert_false(tr_in_task(b.ctx));
	assert_int_equal(tr_tasks_run(ts), 0);
	assert_int_equal(tr_tasks_live(ts), 0);
	for (size_t i = 0; i < NDEV; i++) {
		assert_int_equal(jobs[i].ok, 10);
		assert_true(jobs[i].end - LP_NS_PER_S <= alone + alone / 10);
	}
	tr_tasks_free(ts);
	bus_close(&b);
}

struct sleeper {
	struct tr_ctx *ctx;
	struct tr_tasks *ts;
	uint64_t at;
	int *order, *pos, id;
	bool spawn_child;
};

static void sleeper_fn(void *arg)
{
	struct sleeper *s = arg;

	assert_true(tr_in_task(s->ctx));
	if (s->spawn_child) {
		static struct sleeper child;
		child = (struct sleeper){.ctx = s->ctx,
					 .at = 50 * LP_NS_PER_MS,
					 .order = s->order,
					 .pos = s->pos,
					 .id = 9};
		assert_int_equal(tr_task_spawn(s->ts, sleeper_fn, &child, NULL), 0);
	}
	tr_sleep_until(s->ctx, s->at);
	assert_true(lp_clock_now(s->ctx->env.clock) >= s->at);
	s->order[(*s->pos)++] = s->id;
}

/* sleeps end in time order whatever the spawn order; a task may spawn one */
static void test_task_sleep_order(void **state)
{
	struct bus b;
	struct tr_tasks *ts = NULL;
	struct sleeper sl[3];
	int order[4] = {0}, pos = 0;
	const uint64_t at[3] = {300, 100, 200};

	(void)state;
	bus_open(&b, 1, 0, 0);
	assert_int_equal(tr_tasks_new(b.ctx, &ts, NULL), 0);
	for (int i = 0; i < 3; i++) {
		sl[i] = (struct sleeper){.ctx = b.ctx,
					 .ts = ts,
					 .at = at[i] * LP_NS_PER_MS,
					 .order = order,
					 .pos = &pos,
					 .id = i + 1,
					 .spawn_child = i == 0};
		assert_int_equal(tr_task_spawn(ts, sleeper_fn, &sl[i], NULL), 0);
	}
	assert_int_equal(tr_tasks_run(ts), 0);
	assert_int_equal(pos, 4);
	assert_int_equal(order[0], 9);
	assert_int_equal(order[1], 2);
	assert_int_equal(order[2], 3);
	assert_int_equal(order[3], 1);
	assert_int_equal(lp_clock_now(&b.clk), 300 * LP_NS_PER_MS);
	tr_tasks_free(ts);
	/* outside a task tr_sleep_until is the clock's sleep */
	tr_sleep_until(b.ctx, 400 * LP_NS_PER_MS);
	assert_int_equal(lp_clock_now(&b.clk), 400 * LP_NS_PER_MS);
	bus_close(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ports_listed_apart),
		cmocka_unit_test(test_churn),
		cmocka_unit_test(test_tasks_concurrent),
		cmocka_unit_test(test_task_sleep_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
