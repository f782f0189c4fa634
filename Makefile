# linkprobe - non-recursive top-level Makefile.
#   make            build ./linkprobe
#   make check      bootstrap, build, unit tests (cmocka), CLI tests (prove),
#                   fuzz corpora replayed under ASan, layer check
#   make demo       pair with the simulated iPhone and run a cable test
#   make bench      benchmarks (numbers and ratios)
#   make fuzz       build the libFuzzer harnesses (FUZZ_TIME=s to run each)
#   make install    PREFIX=/usr/local DESTDIR= (make uninstall, make install-dirs)
#   make deb        build the Debian package and lintian it (deb-check: + chroot install)
#   DEVELOPER=1     strict warnings, -Werror;  SANITIZE=address,undefined
.SUFFIXES:
.DEFAULT_GOAL := all

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
DATADIR ?= $(PREFIX)/share
CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := libusb-1.0 libpcap libplist-2.0 openssl json-c
B := build

CFLAGS ?= -O2 -g
LP_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wno-format-truncation -I.
ifeq ($(DEVELOPER),1)
LP_CFLAGS += -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
	-Wpointer-arith -Wvla -Wundef -Wno-missing-field-initializers
endif
ifneq ($(SANITIZE),)
# every finding stops the program: UBSan otherwise prints and carries on (a run
# still exits 0), and ASan exits 1, which the tests cannot tell from a verdict's
# exit 1; aborting (rc 134) fails every test that checks an exit code
LP_CFLAGS += -fsanitize=$(SANITIZE) -fno-sanitize-recover=all -fno-omit-frame-pointer
LP_LDFLAGS += -fsanitize=$(SANITIZE)
export ASAN_OPTIONS ?= abort_on_error=1
export UBSAN_OPTIONS ?= abort_on_error=1:halt_on_error=1:print_stacktrace=1
endif
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(LP_CFLAGS) $(PKG_CFLAGS) $(CPPFLAGS) $(CFLAGS) -MMD -MP
ALL_LIBS = $(LP_LDFLAGS) $(LDFLAGS) $(PKG_LIBS) -lm -pthread

# Layers (doc/HACKING.md): src/base <- usb <- proto <- src/capture <- src/device
#   <- src/diag <- src/analyze <- src/cli. main.c links them.
LAYERS := src/base usb proto src/capture src/device src/diag src/fleet src/analyze src/cli
LIB_SRC := $(filter-out src/cli/main.c,$(foreach d,$(LAYERS),$(wildcard $(d)/*.c)))
LIB_OBJ := $(LIB_SRC:%.c=$(B)/%.o)
LIB := $(B)/liblinkprobe.a

$(B)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# libplist 2.x has no run-time version call: `linkprobe --version` names the build's
$(B)/src/cli/version.o: LP_CFLAGS += -DLP_LIBPLIST_BUILD_VERSION='"$(shell $(PKG_CONFIG) --modversion libplist-2.0 2>/dev/null)"'

$(LIB): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

linkprobe: $(B)/src/cli/main.o $(LIB)
	$(CC) -o $@ $^ $(ALL_LIBS)

all: linkprobe

# --- unit tests (cmocka) ------------------------------------------------------
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:%.c=$(B)/%)
$(B)/tests/unit/%: tests/unit/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LIBS) $(shell $(PKG_CONFIG) --libs cmocka)

# --- fuzzing (libFuzzer + ASan, clang) ----------------------------------------
FUZZ_CC ?= clang
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/fuzz/%)
FUZZ_FLAGS := -Wno-unknown-warning-option -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
# the library once, instrumented for coverage; each harness links against it
FUZZ_OBJ := $(LIB_SRC:%.c=$(B)/fuzzobj/%.o)
FUZZ_LIB := $(B)/fuzzobj/liblinkprobe-fuzz.a
$(B)/fuzzobj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(LP_CFLAGS) $(PKG_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
$(FUZZ_LIB): $(FUZZ_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^
$(B)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(LP_CFLAGS) $(PKG_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_LIB) $(PKG_LIBS) -lm
fuzz: $(FUZZ_BIN)
# make fuzz-run FUZZ_TIME=S: every harness for S seconds of wall time (niced),
# make fuzz-campaign FUZZ_CPU=S: every harness until it has used S seconds of
# CPU, FUZZ_JOBS at a time. Both through tools/fuzz-run.sh, which gives each
# harness its dictionary (tests/fuzz/dict) and a -max_len over the caps it
# guards, and writes new inputs to build/fuzz-new/NAME and a table of
# executions, coverage and crashes. FUZZ_ONLY="a b" picks harnesses; FUZZ_ADD=1
# makes a campaign count on from the CPU time already in build/fuzz-new/*.runs
# (one stopped at the end of a session goes on in the next). Merge what they
# found into the committed corpora with tools/fuzz-merge.sh.
FUZZ_TIME ?= 60
FUZZ_CPU ?= 1800
FUZZ_JOBS ?= 1
FUZZ_ONLY ?=
fuzz-run: $(FUZZ_BIN)
	sh tools/fuzz-run.sh -t $(FUZZ_TIME) $(FUZZ_ONLY)
fuzz-campaign: $(FUZZ_BIN)
	sh tools/fuzz-run.sh -c $(FUZZ_CPU) -j $(FUZZ_JOBS) $(if $(FUZZ_ADD),-a) $(FUZZ_ONLY)

# replay every committed corpus under ASan: the harness exits non-zero on a crash
fuzz-replay: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$${f##*/fuzz_}; \
	  echo "fuzz-replay $$n: $$(ls tests/fuzz/corpus/$$n | wc -l) inputs"; \
	  $$f -runs=0 tests/fuzz/corpus/$$n >$(B)/fuzz/$$n.log 2>&1 || { cat $(B)/fuzz/$$n.log; exit 1; }; done

# --- a sanitized subset for CI: make check-asan ------------------------------
# The whole make check SANITIZE=address,undefined does not fit CI's time (see
# README, Tests). This part does: the unit tests and linkprobe are linked
# against the fuzz library, already built with ASan+UBSan for the corpus replay
# (nothing is compiled twice), then the unit tests and the hostile-input CLI
# tests run with them; any sanitizer finding aborts the program (rc 134).
ASAN_B := $(B)/asan
ASAN_UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(ASAN_B)/%)
ASAN_TAP ?= tests/t/93-hostile-device.t tests/t/61-analyze-hostile.t tests/t/90-hostile-files.t \
	tests/t/91-hostile-outputs.t
# prove jobs for make check's and check-asan's TAP files (each file has its own
# temp dir and HOME: tests/t/lib.sh); PROVE_JOBS=1 runs them one at a time
PROVE_JOBS ?= 2
ASAN_ENV := ASAN_OPTIONS=$${ASAN_OPTIONS:-abort_on_error=1} \
	UBSAN_OPTIONS=$${UBSAN_OPTIONS:-abort_on_error=1:halt_on_error=1:print_stacktrace=1}
$(ASAN_B)/test_%: tests/unit/test_%.c $(FUZZ_LIB)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(LP_CFLAGS) $(PKG_CFLAGS) $(FUZZ_FLAGS) -MMD -MP -o $@ $< $(FUZZ_LIB) $(PKG_LIBS) \
	  $(shell $(PKG_CONFIG) --libs cmocka) -lm -pthread
$(ASAN_B)/linkprobe: src/cli/main.c $(FUZZ_LIB)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(LP_CFLAGS) $(PKG_CFLAGS) $(FUZZ_FLAGS) -MMD -MP -o $@ $< $(FUZZ_LIB) $(PKG_LIBS) -lm -pthread
check-asan: bootstrap
	@$(MAKE) --no-print-directory -j2 $(ASAN_UNIT_BIN) $(ASAN_B)/linkprobe
	@rc=0; for t in $(ASAN_UNIT_BIN); do $(ASAN_ENV) $$t || rc=1; done; exit $$rc
	$(ASAN_ENV) LP=$(CURDIR)/$(ASAN_B)/linkprobe prove -v --timer -j$(PROVE_JOBS) $(ASAN_TAP)

# --- checks -------------------------------------------------------------------
bootstrap:
	@tools/bootstrap.sh

check-layers:
	@tools/check-layers.sh

# every C file as clang-format (.clang-format; Debian 12's clang-format 14) writes it
check-format:
	@out=$$(for f in $$(git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build*'); do \
	  clang-format "$$f" | cmp -s - "$$f" || echo "$$f"; done); \
	if [ -n "$$out" ]; then echo "check-format: not formatted (run: clang-format -i FILE):" $$out; exit 1; fi; \
	echo "check-format: ok"

unit: $(UNIT_BIN)
	@rc=0; for t in $(UNIT_BIN); do $$t || rc=1; done; exit $$rc

# a stand-in usbmuxd over the simulated iPhone, for tests/t/80-via-usbmuxd.t
FAKE_USBMUXD := $(B)/tests/fake-usbmuxd
$(FAKE_USBMUXD): tests/fake_usbmuxd.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LIBS)

# per-packet decode of a bus-level capture, for tests/t/62-bus.t (vs tshark)
USBLL_DUMP := $(B)/tests/usbll-dump
$(USBLL_DUMP): tests/usbll_dump.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LIBS)

# an LD_PRELOAD shim whose libusb_init() fails, for tests/t/27-host-faults.t
# (no sanitizer flags: it is loaded into linkprobe, not linked)
LIBUSB_FAIL := $(B)/tests/libusb_init_fail.so
$(LIBUSB_FAIL): tests/shim/libusb_init_fail.c
	@mkdir -p $(@D)
	$(CC) -shared -fPIC $(CFLAGS) $(PKG_CFLAGS) -o $@ $<

# the lab's FunctionFS gadget (tools/gadget/, run inside the VM by tools/lab/lab.sh):
# built by make check too, so a change that breaks it is caught without the lab
GADGET := $(B)/tools/lp_gadget
GADGET_SRC := $(wildcard tools/gadget/*.c)
$(GADGET): $(GADGET_SRC) tools/gadget/lpg.h $(LIB)
	@mkdir -p $(@D)
	$(CC) $(filter-out -MMD -MP,$(ALL_CFLAGS)) -DLP_GADGET_SIMDEV -o $@ $(GADGET_SRC) $(LIB) $(ALL_LIBS)

# the slowest files first, so that neither prove job is left with one at the end
TAP_FIRST := tests/t/92-kill.t tests/t/65-parity.t tests/t/85-report.t tests/t/93-hostile-device.t
TAP_ALL := $(TAP_FIRST) $(filter-out $(TAP_FIRST),$(sort $(wildcard tests/t/*.t)))
tap: linkprobe $(FAKE_USBMUXD) $(USBLL_DUMP) $(LIBUSB_FAIL)
	prove -v --timer -j$(PROVE_JOBS) $(TAP_ALL)

check: bootstrap
	@$(MAKE) --no-print-directory check-layers
	@$(MAKE) --no-print-directory check-format
	@$(MAKE) --no-print-directory -j2 all $(UNIT_BIN) $(FUZZ_BIN) $(GADGET)
	@$(MAKE) --no-print-directory fuzz-replay
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory tap

# the QEMU USB lab (tools/lab/README): real kernel USB stack, our gadget, usbmuxd
LAB_SCENARIOS ?=
lab:
	@tools/bootstrap.sh lab
	@$(MAKE) --no-print-directory all
	prove -v --timer --exec '' tools/lab/lab.sh $(if $(LAB_SCENARIOS),:: $(LAB_SCENARIOS))

demo: bootstrap
	@$(MAKE) --no-print-directory all
	@tools/demo.sh

BENCH_SRC := $(wildcard tools/bench/bench_*.c)
BENCH_BIN := $(BENCH_SRC:tools/bench/%.c=$(B)/bench/%)
$(B)/bench/%: tools/bench/%.c $(LIB)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(ALL_LIBS)
bench: bootstrap
	@$(MAKE) --no-print-directory CFLAGS="-O2 -g" $(BENCH_BIN) $(B)/bench/gen_capture linkprobe
	@for b in $(BENCH_BIN); do $$b || exit 1; done
	@for s in tools/bench/*.sh; do [ -e "$$s" ] || continue; B=$(B) sh $$s || exit 1; done

# --- install / uninstall -----------------------------------------------------
# Every directory can be overridden (make install EXTCAPDIR=...). Wireshark's
# directories are asked from Wireshark: the extcap directory from its
# pkg-config file (libwireshark-dev) or `tshark -G folders`; the Lua plugin
# directory from `tshark -G folders` ("Global Lua Plugins") or the parent of
# pkg-config's plugindir (that one is versioned, .../plugins/4.0, for C
# plugins). Without Wireshark, Wireshark's defaults under PREFIX.
# The udev rules directory comes from udev.pc, else /lib/udev/rules.d.
MANDIR ?= $(DATADIR)/man
DOCDIR ?= $(DATADIR)/doc/linkprobe
BASHCOMPDIR ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR ?= $(if $(filter /usr,$(PREFIX)),$(DATADIR)/zsh/vendor-completions,$(DATADIR)/zsh/site-functions)
# Each is asked once, and only when not given on the command line.
ifneq ($(origin WIRESHARK_PLUGINDIR)$(origin EXTCAPDIR),command linecommand line)
WS_FOLDERS := $(shell tshark -G folders 2>/dev/null | sed -n 's/^Global Lua Plugins:[[:space:]]*/lua=/p; s/^Extcap path:[[:space:]]*/extcap=/p')
endif
ifeq ($(origin WIRESHARK_PLUGINDIR),undefined)
WIRESHARK_PLUGINDIR := $(or $(patsubst lua=%,%,$(filter lua=%,$(WS_FOLDERS))),$(patsubst %/,%,$(dir $(shell $(PKG_CONFIG) --variable=plugindir wireshark 2>/dev/null))),$(PREFIX)/lib/wireshark/plugins)
endif
ifeq ($(origin EXTCAPDIR),undefined)
EXTCAPDIR := $(or $(shell $(PKG_CONFIG) --variable=extcapdir wireshark 2>/dev/null),$(patsubst extcap=%,%,$(filter extcap=%,$(WS_FOLDERS))),$(PREFIX)/lib/wireshark/extcap)
endif
ifeq ($(origin UDEVRULESDIR),undefined)
UDEVRULESDIR := $(or $(addsuffix /rules.d,$(shell $(PKG_CONFIG) --variable=udevdir udev 2>/dev/null)),/lib/udev/rules.d)
endif
# what install puts where (uninstall removes exactly these)
INSTALLED = $(BINDIR)/linkprobe $(EXTCAPDIR)/linkprobe $(WIRESHARK_PLUGINDIR)/linkprobe.lua \
	$(UDEVRULESDIR)/39-linkprobe.rules $(MANDIR)/man1/linkprobe.1 \
	$(BASHCOMPDIR)/linkprobe $(ZSHCOMPDIR)/_linkprobe $(DOCDIR)/protocol.md
install-dirs:
	@echo "BINDIR=$(BINDIR)"; echo "EXTCAPDIR=$(EXTCAPDIR)"; \
	echo "WIRESHARK_PLUGINDIR=$(WIRESHARK_PLUGINDIR)"; echo "UDEVRULESDIR=$(UDEVRULESDIR)"; \
	echo "MANDIR=$(MANDIR)"; echo "BASHCOMPDIR=$(BASHCOMPDIR)"; echo "ZSHCOMPDIR=$(ZSHCOMPDIR)"; \
	echo "DOCDIR=$(DOCDIR)"
install: linkprobe
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(EXTCAPDIR) $(DESTDIR)$(WIRESHARK_PLUGINDIR) \
	  $(DESTDIR)$(UDEVRULESDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(BASHCOMPDIR) \
	  $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(DOCDIR)
	install -m 0755 linkprobe $(DESTDIR)$(BINDIR)/linkprobe
	ln -sf $(BINDIR)/linkprobe $(DESTDIR)$(EXTCAPDIR)/linkprobe
	install -m 0644 tools/wireshark/linkprobe.lua $(DESTDIR)$(WIRESHARK_PLUGINDIR)/linkprobe.lua
	install -m 0644 tools/udev/39-linkprobe.rules $(DESTDIR)$(UDEVRULESDIR)/39-linkprobe.rules
	install -m 0644 doc/linkprobe.1 $(DESTDIR)$(MANDIR)/man1/linkprobe.1
	install -m 0644 tools/completion/linkprobe.bash $(DESTDIR)$(BASHCOMPDIR)/linkprobe
	install -m 0644 tools/completion/_linkprobe $(DESTDIR)$(ZSHCOMPDIR)/_linkprobe
	install -m 0644 doc/protocol.md $(DESTDIR)$(DOCDIR)/protocol.md
	@echo "install: on a running system reload udev: udevadm control --reload && udevadm trigger"

# Removes what install put there; under DESTDIR also the directories it leaves
# empty (never system directories of a live system).
uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	@if [ -n "$(DESTDIR)" ]; then for f in $(INSTALLED); do \
	  rmdir -p --ignore-fail-on-non-empty "$(DESTDIR)$${f%/*}" 2>/dev/null || true; done; fi

# --- Debian package (debian/; slow: run by .ci/run, not by make check) --------
# deb: build + lintian (build/deb/*.deb); deb-check: also install it in a
# Debian 12 chroot and run it (root; tools/deb-check.sh)
deb:
	@tools/bootstrap.sh package
	tools/deb-check.sh --build-only
deb-check:
	@tools/bootstrap.sh package
	tools/deb-check.sh

clean:
	rm -rf $(B) linkprobe


.PHONY: check-format lab all check check-asan unit tap fuzz fuzz-run fuzz-campaign fuzz-replay bootstrap check-layers demo bench install install-dirs uninstall deb deb-check clean

-include $(LIB_OBJ:.o=.d) $(B)/src/cli/main.d $(FUZZ_OBJ:.o=.d) $(FAKE_USBMUXD).d $(USBLL_DUMP).d $(ASAN_UNIT_BIN:=.d) $(ASAN_B)/linkprobe.d $(BENCH_BIN:=.d) $(B)/bench/gen_capture.d
