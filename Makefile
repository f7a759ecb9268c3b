# etrnd - store-and-forward SMTP relay with ETRN and ODMR
#
#   make run     install what is missing, build, start etrnd with demo/etrnd.conf
#   make test    install what is missing, build with ASan+UBSan, run every test
#   make bench   the benchmark report (etrnd, Postfix, smtp-sink side by side)
#   make fuzz    every fuzz target for FUZZ_SECONDS each

CC       ?= cc
BUILD    ?= build
SAN      ?= 0
PKGS     := libevent libevent_openssl libevent_pthreads openssl sqlite3 libcares
PREFIX   ?= /usr/local

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
            -Wno-unused-parameter -Isrc $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lcrypt -lpthread
ifeq ($(SAN),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

LIB_SRC  := $(sort $(filter-out src/daemon/main.c,$(wildcard src/*/*.c)))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
PROGS    := $(BUILD)/etrnd $(BUILD)/etrnctl $(BUILD)/etrn

# The pure modules: what the fuzz targets link (no libevent, no OpenSSL).
PURE_SRC := $(sort $(wildcard src/util/*.c src/smtp/*.c) src/dns/mx.c) \
            $(wildcard src/config/config_parse.c src/config/config_schema.c src/config/config_common.c)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build-fuzz/%)
FUZZ_SECONDS ?= 60

.PHONY: all deps run test unit e2e fuzz fuzz-smoke bench clean install

all: $(PROGS)

deps:
	@scripts/install-deps.sh

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libetrnd.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/etrnd: $(BUILD)/src/daemon/main.o $(BUILD)/libetrnd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/etrnctl: $(BUILD)/tools/etrnctl/main.o $(BUILD)/libetrnd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

ETRN_OBJ := $(patsubst %.c,$(BUILD)/%.o,$(wildcard tools/etrn/*.c))
$(BUILD)/etrn: $(ETRN_OBJ) $(BUILD)/libetrnd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(BUILD)/libetrnd.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit-bins: $(UNIT_BIN)

run: deps all
	scripts/run-demo.sh $(BUILD)

# make test: the sanitizer build, then every suite (scripts/run-tests.sh).
# The release build too: the clock-step test runs it under libfaketime,
# which AddressSanitizer's start-up does not survive.
test: deps
	$(MAKE) -j2 BUILD=build-asan SAN=1 all unit-bins
	$(MAKE) -j2 all
	$(MAKE) -j2 fuzz-bins
	scripts/run-tests.sh build-asan

# Targets that need more than the pure modules say so here.
FUZZ_EXTRA_fuzz_users := src/auth/users_parse.c
FUZZ_EXTRA_fuzz_sasl  := src/auth/users_parse.c src/auth/users.c src/auth/sasl.c
FUZZ_LIBS_fuzz_sasl   := -lcrypto -lcrypt
FUZZ_EXTRA_fuzz_smtpd_session := src/smtpd/smtpd_session.c \
    src/smtpd/smtpd_policy.c src/log/log.c src/metrics/metrics.c \
    src/queue/queue_msg.c
FUZZ_EXTRA_fuzz_envelope := src/queue/envelope.c src/queue/queue_msg.c

# Every source is compiled once with the fuzzing instrumentation; each
# target links what it needs.
FUZZ_CFLAGS := -g -O1 -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror \
    -Wno-unused-parameter -Isrc -fsanitize=fuzzer-no-link,address,undefined \
    -fno-sanitize-recover=undefined
FUZZ_OBJ = $(patsubst %.c,build-fuzz/obj/%.o,$(1))

build-fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -MMD -MP -c -o $@ $<

.SECONDEXPANSION:
build-fuzz/%: build-fuzz/obj/tests/fuzz/%.o $$(call FUZZ_OBJ,$(PURE_SRC) $$(FUZZ_EXTRA_$$*))
	clang -fsanitize=fuzzer,address,undefined -o $@ $^ $(FUZZ_LIBS_$*)

fuzz-bins: $(FUZZ_BIN)

fuzz: deps fuzz-bins
	scripts/run-fuzz.sh $(FUZZ_SECONDS)

$(BUILD)/etrnd-fill: $(BUILD)/bench/fill.o $(BUILD)/libetrnd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bench: deps all $(BUILD)/etrnd-fill
	bench/run.sh $(BUILD)

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) build-fuzz/obj -name '*.d' 2>/dev/null)

# ---- make install / make uninstall ----
# PREFIX (default /usr/local) and DESTDIR as usual; SYSCONFDIR for the example
# configuration.  Programs, manual pages, documentation (README, docs/,
# contrib/), systemd units (their /usr/local/ paths changed to PREFIX's).
SYSCONFDIR ?= /etc
INSTALL    ?= install
I_SBIN     := $(DESTDIR)$(PREFIX)/sbin
I_BIN      := $(DESTDIR)$(PREFIX)/bin
I_MAN      := $(DESTDIR)$(PREFIX)/share/man
I_DOC      := $(DESTDIR)$(PREFIX)/share/doc/etrnd
I_UNIT     := $(DESTDIR)$(PREFIX)/lib/systemd/system
I_ETC      := $(DESTDIR)$(SYSCONFDIR)/etrnd
MAN_PAGES  := man/etrn.1 man/etrnd.conf.5 man/etrnd.8 man/etrnctl.8
DOC_FILES  := README.md $(sort $(wildcard docs/*.md))
CONTRIB    := $(sort $(filter-out contrib/ip-up.d,$(wildcard contrib/* contrib/ip-up.d/*)))
UNITS      := etrnd.service etrn@.service etrn@.timer

.PHONY: install uninstall

install: all
	$(INSTALL) -D -m 0755 $(BUILD)/etrnd $(I_SBIN)/etrnd
	$(INSTALL) -D -m 0755 $(BUILD)/etrnctl $(I_SBIN)/etrnctl
	$(INSTALL) -D -m 0755 $(BUILD)/etrn $(I_BIN)/etrn
	@set -e; for m in $(MAN_PAGES); do \
		echo "$(INSTALL) -D -m 0644 $$m $(I_MAN)/man$${m##*.}/$${m#man/}"; \
		$(INSTALL) -D -m 0644 $$m $(I_MAN)/man$${m##*.}/$${m#man/}; done
	@set -e; for f in $(DOC_FILES); do \
		echo "$(INSTALL) -D -m 0644 $$f $(I_DOC)/$${f#docs/}"; \
		$(INSTALL) -D -m 0644 $$f $(I_DOC)/$${f#docs/}; done
	@set -e; for f in $(CONTRIB); do \
		echo "$(INSTALL) -D -m 0644 $$f $(I_DOC)/$$f"; \
		$(INSTALL) -D -m 0644 $$f $(I_DOC)/$$f; done
	@mkdir -p $(BUILD)/units
	@set -e; for u in $(UNITS); do \
		sed 's|/usr/local/|$(PREFIX)/|g' contrib/$$u > $(BUILD)/units/$$u; \
		echo "$(INSTALL) -D -m 0644 contrib/$$u $(I_UNIT)/$$u"; \
		$(INSTALL) -D -m 0644 $(BUILD)/units/$$u $(I_UNIT)/$$u; done
	$(INSTALL) -D -m 0644 contrib/etrnd.conf.example $(I_ETC)/etrnd.conf.example

uninstall:
	rm -f $(I_SBIN)/etrnd $(I_SBIN)/etrnctl $(I_BIN)/etrn
	rm -f $(foreach m,$(MAN_PAGES),$(I_MAN)/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))
	rm -f $(addprefix $(I_DOC)/,$(notdir $(DOC_FILES)) $(CONTRIB))
	rm -f $(addprefix $(I_UNIT)/,$(UNITS)) $(I_ETC)/etrnd.conf.example
	-rmdir $(I_DOC)/contrib/ip-up.d $(I_DOC)/contrib $(I_DOC) $(I_ETC) 2>/dev/null
