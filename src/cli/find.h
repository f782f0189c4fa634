/* find.h - the USB stages shared by every direct command. */
#ifndef LP_FIND_H
#define LP_FIND_H

#include "src/cli/app.h"
#include "src/diag/rules.h"
#include "usb/transport.h"

/* List Apple devices, waiting up to wait_ns for one to appear; pick the one
 * with --udid if given, else the first phone that offers usbmux (several
 * devices: their descriptors are read), then one without it, then recovery
 * or DFU, then anything. Fills r->dev from the listing and *listed (may be
 * NULL) with how many were listed; *phones and *chosen_rank (may be NULL)
 * with how many phones (normal-mode PIDs) there were and the chosen one's
 * rank (0 offers usbmux, 1 does not, above: worse), both set only when
 * several devices were listed without --udid. Returns 0 with *out,
 * LP_ENODEV if none, LP_ENOENT if none has the --udid (e->msg lists the ones
 * there are), other lp_err on transport failure. */
int find_device(struct lp_app *app, struct diag_report *r, uint64_t wait_ns, struct tr_devinfo *out,
		size_t *listed, size_t *phones, int *chosen_rank, struct lp_errinfo *e);

/* Fill r->dev from a listing entry (vid/pid/bus/addr/speed/mode). */
void find_fill_dev(struct diag_report *r, const struct tr_devinfo *d);

struct usbd_probe;
struct hl_link;
/* The stages "find device", "descriptors" and "usbmux" (stages.h): find
 * the device, read its descriptors (its mode: DFU/recovery; camera-only),
 * open usbmux on it. Fills r->dev, *info and *p; *link owned by the caller
 * (hl_close) and attached to the capture. On failure the failing stage and
 * the verdict are set and the lp_err is returned. */
int find_usb_stages(struct lp_app *app, struct diag_report *r, struct tr_devinfo *info,
		    struct usbd_probe *p, struct hl_link **link);
/* The same on the device `pin` (a listing entry, borrowed) instead of
 * finding one; pin NULL = find_usb_stages. */
int find_usb_stages_at(struct lp_app *app, struct diag_report *r, const struct tr_devinfo *pin,
		       struct tr_devinfo *info, struct usbd_probe *p, struct hl_link **link);

/* As find_usb_stages, but a usbmux interface another program holds
 * (LP_EBUSY from the claim) is not a verdict: the usbmux stage is skipped
 * with the claim's sentence, which is also copied to held[heldsz] (who holds
 * /dev/bus/usb/BBB/DDD, as far as /proc tells), and LP_EBUSY is returned -
 * the caller goes through usbmuxd (via_usbmuxd_held). */
int find_usb_stages_held(struct lp_app *app, struct diag_report *r, struct tr_devinfo *info,
			 struct usbd_probe *p, struct hl_link **link, char *held, size_t heldsz);

#endif
