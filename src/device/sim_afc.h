/* sim_afc.h - the simulated iPhone's file service (com.apple.afc): the AFC
 * subset a host needs to move a file through the link and back - device
 * info, open, read, write, close, file info, remove - over an in-memory
 * media area with a fixed capacity. Every other operation is refused with a
 * status (known operations: "operation not supported"; numbers outside the
 * protocol: "unknown packet type"); a packet that breaks the framing resets
 * the connection. Paths are inside the media area, as on a real device: a
 * ".." component is "permission denied". Reference: doc/protocol.md 4.12.
 *
 * Files outlive connections and re-enumeration (they are on the "phone"),
 * not the simulator. */
#ifndef LP_SIM_AFC_H
#define LP_SIM_AFC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_AFC_SPACE (256u << 20) /* bytes the media area holds */
#define SIM_AFC_FILES 16	   /* files at once */
#define SIM_AFC_CONNS 8		   /* AFC connections at once */
#define SIM_AFC_HANDLES 16	   /* open files per connection */

struct sim_afc;

/* Where the service's bytes go: send `len` bytes on mux connection `conn`
 * (0 or an error: the reply is then lost, as on a reset connection), and
 * reset a connection whose framing is lost. */
struct sim_afc_io {
	int (*send)(void *ud, uint32_t conn, const uint8_t *buf, size_t len);
	void (*reset)(void *ud, uint32_t conn);
	void *ud;
};

/* The service over `io` (copied). NULL on allocation failure. */
struct sim_afc *sim_afc_new(const struct sim_afc_io *io);
void sim_afc_free(struct sim_afc *a);
/* Serve mux connection `conn`; false when the connection table is full. */
bool sim_afc_accept(struct sim_afc *a, uint32_t conn);
/* Bytes from the host on `conn`: false if `conn` is not an AFC connection. */
bool sim_afc_data(struct sim_afc *a, uint32_t conn, const uint8_t *buf, size_t len);
/* The connection ended (either side). */
void sim_afc_closed(struct sim_afc *a, uint32_t conn);
/* The attachment ended: every connection is gone (files stay). */
void sim_afc_reset(struct sim_afc *a);
/* Files in the media area and the bytes they hold (for tests). */
void sim_afc_usage(const struct sim_afc *a, size_t *files, size_t *bytes);

#endif
