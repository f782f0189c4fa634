/* report_data.c - the series the HTML report draws that the JSON report does
 * not carry: every USB transfer (a transport observer in live runs, a second
 * pass of the capture reader for `analyze`) and the progress notes of running
 * stages. See report_html.h. */
#include "src/cli/report_html.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "src/capture/reader.h"
#include "src/diag/diag.h"

/* ------------------------------------------------------------------------
 * Series
 */

void rep_data_init(struct rep_data *d, uint64_t t0_ns, const char *source)
{
	memset(d, 0, sizeof(*d));
	d->t0_ns = t0_ns;
	d->source = source;
}

void rep_data_release(struct rep_data *d)
{
	free(d->x);
	free(d->m);
	d->x = NULL;
	d->m = NULL;
	d->nx = d->capx = d->nm = d->capm = 0;
	d->frozen = true;
}

int rep_add_xfer(struct rep_data *d, const struct rep_xfer *x)
{
	if (d->frozen)
		return 0;
	if (d->nx >= REP_MAX_XFERS) {
		d->dropped++;
		return 0;
	}
	if (d->nx == d->capx) {
		size_t cap = d->capx ? d->capx * 2 : 1024;
		struct rep_xfer *p;
		if (cap > REP_MAX_XFERS)
			cap = REP_MAX_XFERS;
		p = realloc(d->x, cap * sizeof(*p));
		if (!p) {
			d->dropped++;
			return LP_ENOMEM;
		}
		d->x = p;
		d->capx = cap;
	}
	d->x[d->nx++] = *x;
	return 0;
}

int rep_add_mark(struct rep_data *d, uint64_t t_ns, const char *stage, const char *text)
{
	struct rep_mark *m;

	if (d->frozen || d->nm >= REP_MAX_MARKS)
		return 0;
	if (d->nm && strcmp(d->m[d->nm - 1].text, text) == 0 &&
	    strcmp(d->m[d->nm - 1].stage, stage) == 0)
		return 0;
	if (d->nm == d->capm) {
		size_t cap = d->capm ? d->capm * 2 : 16;
		struct rep_mark *p = realloc(d->m, cap * sizeof(*p));
		if (!p)
			return LP_ENOMEM;
		d->m = p;
		d->capm = cap;
	}
	m = &d->m[d->nm++];
	m->t_ns = t_ns;
	snprintf(m->stage, sizeof(m->stage), "%s", stage);
	snprintf(m->text, sizeof(m->text), "%s", text);
	return 0;
}

static uint64_t rel(const struct rep_data *d, uint64_t t)
{
	return t > d->t0_ns ? t - d->t0_ns : 0;
}

void rep_observe(void *ud, enum tr_event ev, const struct tr_xfer *x, int submit_err)
{
	struct rep_data *d = ud;
	struct rep_xfer r = {0};

	if (d->frozen || ev == TR_EV_SUBMIT)
		return;
	r.endpoint = x->endpoint;
	r.type = (uint8_t)x->type;
	r.start_ns = rel(d, x->submit_ns);
	if (ev == TR_EV_SUBMIT_ERROR) {
		r.end_ns = r.start_ns;
		r.kind = submit_err == LP_ENODEV ? REP_X_GONE : REP_X_ERROR;
	} else {
		r.end_ns = rel(d, x->done_ns);
		r.bytes = x->actual > UINT32_MAX ? UINT32_MAX : (uint32_t)x->actual;
		switch (x->status) {
		case TR_STATUS_COMPLETED:
			r.kind = REP_X_OK;
			break;
		case TR_STATUS_STALL:
			r.kind = REP_X_STALL;
			break;
		case TR_STATUS_TIMED_OUT:
			r.kind = REP_X_TIMEOUT;
			break;
		case TR_STATUS_CANCELLED:
			r.kind = REP_X_CANCELLED;
			break;
		case TR_STATUS_NO_DEVICE:
			r.kind = REP_X_GONE;
			break;
		default:
			r.kind = REP_X_ERROR;
			break;
		}
	}
	if (r.end_ns < r.start_ns)
		r.end_ns = r.start_ns;
	rep_add_xfer(d, &r);
}

/* ------------------------------------------------------------------------
 * analyze --report: the transfers of a capture, read with the reader the
 * analyzer uses (a second pass, only when a report is asked for)
 */

#define REP_CAP_QUEUES 128 /* (enumeration, endpoint) pairs followed */
#define REP_CAP_FIFO 64	   /* outstanding submits per endpoint */

struct cap_collect {
	struct rep_data *d;
	struct {
		unsigned usb;
		uint8_t ep;
		uint64_t t[REP_CAP_FIFO];
		unsigned head, n;
	} q[REP_CAP_QUEUES];
	size_t nq;
};

/* Linux URB status (usbmon's form; USBPcap's is mapped by the reader) */
static uint8_t kind_of_status(int32_t st)
{
	switch (st) {
	case 0:
		return REP_X_OK;
	case -32:
		return REP_X_STALL; /* EPIPE */
	case -110:
	case -62:
		return REP_X_TIMEOUT; /* ETIMEDOUT, ETIME */
	case -2:
	case -104:
		return REP_X_CANCELLED; /* ENOENT, ECONNRESET: unlinked */
	case -19:
	case -108:
		return REP_X_GONE; /* ENODEV, ESHUTDOWN */
	default:
		return REP_X_ERROR;
	}
}

static bool collect_event(void *ud, const struct cap_event *ev)
{
	struct cap_collect *c = ud;
	const struct cap_transfer *x = &ev->u.x;
	struct rep_xfer r = {0};
	size_t i;

	if (ev->type != CAP_EV_TRANSFER || !ev->usb)
		return true;
	for (i = 0; i < c->nq; i++)
		if (c->q[i].usb == ev->usb->index && c->q[i].ep == x->ep)
			break;
	if (i == c->nq && c->nq < REP_CAP_QUEUES) {
		c->q[i].usb = ev->usb->index;
		c->q[i].ep = x->ep;
		c->q[i].head = c->q[i].n = 0;
		c->nq++;
	}
	if (x->type == 'S') {
		/* an endpoint's URBs complete in the order they were submitted */
		if (i < c->nq && c->q[i].n < REP_CAP_FIFO)
			c->q[i].t[(c->q[i].head + c->q[i].n++) % REP_CAP_FIFO] = ev->t;
		return true;
	}
	r.end_ns = ev->t;
	r.start_ns = ev->t;
	if (x->type == 'C' && i < c->nq && c->q[i].n) {
		r.start_ns = c->q[i].t[c->q[i].head];
		c->q[i].head = (c->q[i].head + 1) % REP_CAP_FIFO;
		c->q[i].n--;
	}
	if (r.start_ns > r.end_ns)
		r.start_ns = r.end_ns;
	r.endpoint = x->ep;
	r.type = x->xfer == 2 ? TR_XFER_CONTROL : TR_XFER_BULK;
	r.bytes = x->type == 'C' ? x->len : 0;
	r.packet = ev->pkt > UINT32_MAX ? UINT32_MAX : (uint32_t)ev->pkt;
	r.kind = kind_of_status(x->status);
	if (x->type == 'E' && r.kind == REP_X_OK)
		r.kind = REP_X_ERROR;
	rep_add_xfer(c->d, &r);
	return true;
}

int rep_collect_capture(struct rep_data *d, const char *path, int usbmuxd_port,
			struct lp_errinfo *e)
{
	struct cap_reader_opts o = {.usbmuxd_port = usbmuxd_port};
	struct cap_collect *c;
	struct cap_reader *rd;
	FILE *f;
	int r;

	if (strcmp(path, "-") == 0) {
		d->xfer_note =
			"The capture was read from a pipe, which cannot be read a second time for the "
			"transfer timeline.";
		return 0;
	}
	f = fopen(path, "rb");
	if (!f)
		return lp_err_set(e, LP_EIO, "cannot reopen %s: %s", path, strerror(errno));
	c = calloc(1, sizeof(*c));
	rd = c ? cap_reader_new(&o, collect_event, c) : NULL;
	if (!rd) {
		fclose(f);
		free(c);
		return lp_err_set(e, LP_ENOMEM, "out of memory reading the transfers");
	}
	c->d = d;
	r = cap_reader_run(rd, f, e);
	cap_reader_free(rd);
	free(c);
	return r;
}
