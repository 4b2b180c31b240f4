# spamd for Linux - one Makefile for the whole tree.
#
#   make            build spamd, greyctl and the libraries into build/
#   make check      deps, -Werror build, unit tests, unit tests under
#                   ASan+UBSan, integration and system tests; one summary line
#   make bench      benchmarks (figures, never pass/fail)
#   make fuzz       long fuzz runs (see tests/fuzz when present)
#   make run        the README's run command: spamd on loopback, local db
#   make install DESTDIR=... PREFIX=...
#
# Sources are picked up by folder so parts can grow without editing this
# file: every greydb/*.c but greyctl*.c is libgreydb, every spamd/*/*.c
# (engine/, writer/, setup/, common/) but the program entry points
# (spamd/main.c, spamd/setup/setup_main.c) is libspamd, every
# pf-sync/*.c but greylogd_main.c (build/greylogd) is libpfsync, and
# each tests/unit/test_*.c, tests/helpers/*.c and bench/*.c is its own
# program linked against all three libraries.

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc

PKGS     = libevent libbsd-overlay libnftables libcrypto libssl zlib libcurl \
           libnetfilter_log libseccomp
WARN     = -Wall -Wextra -Wformat=2 -Wformat-security -Wshadow \
           -Wno-unused-parameter
CFLAGS  ?= -O2 -g
ifeq ($(SAN),1)
CFLAGS  += -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
           -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(WERROR),1)
WARN    += -Werror
endif
CPPFLAGS += -D_GNU_SOURCE -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
ALL_CFLAGS = -std=c11 $(WARN) $(CFLAGS) $(CPPFLAGS)
LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldb -lpthread -lresolv
TESTLIBS = $(shell pkg-config --libs cmocka 2>/dev/null)

GREYDB_SRC = $(filter-out greydb/greyctl%.c,$(wildcard greydb/*.c))
GREYCTL_SRC = $(wildcard greydb/greyctl*.c)
SPAMD_LIB_SRC = $(filter-out spamd/setup/setup_main.c,$(wildcard spamd/*/*.c))
PFSYNC_SRC = $(filter-out pf-sync/greylogd_main.c,$(wildcard pf-sync/*.c))
UNIT_SRC   = $(wildcard tests/unit/test_*.c)
HELPER_SRC = $(wildcard tests/helpers/*.c)
BENCH_SRC  = $(wildcard bench/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBGREYDB = $(BUILD)/libgreydb.a
LIBSPAMD  = $(BUILD)/libspamd.a
LIBPFSYNC = $(BUILD)/libpfsync.a
ALLLIBS   = $(LIBSPAMD) $(LIBPFSYNC) $(LIBGREYDB)
# The three libraries call each other (logging, the store), so they are
# linked as one group.
LINKLIBS  = -Wl,--start-group $(ALLLIBS) -Wl,--end-group $(LIBS)

PROGS = $(if $(GREYCTL_SRC),$(BUILD)/greyctl) \
        $(if $(wildcard spamd/main.c),$(BUILD)/spamd) \
        $(if $(wildcard spamd/setup/setup_main.c),$(BUILD)/spamd-setup) \
        $(if $(wildcard pf-sync/greylogd_main.c),$(BUILD)/greylogd)
UNIT_BINS   = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
HELPER_BINS = $(patsubst tests/helpers/%.c,$(BUILD)/tests/helpers/%,$(HELPER_SRC))
BENCH_BINS  = $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))


.PHONY: all deps check check-sanitize unit unit-asan integration system bench fuzz run \
        install clean tests dist
all: $(PROGS)

tests: $(UNIT_BINS) $(HELPER_BINS)

# The dependency file names the object both as this make names it and
# relative to the tree: a make run with an absolute BUILD (a test script
# building one program) must not leave rules that a later make, with the
# usual relative BUILD, does not apply (headers changed, objects kept).
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -MT $@ \
	    -MT $(patsubst $(CURDIR)/%,%,$(abspath $@)) -c -o $@ $<

$(LIBGREYDB): $(call obj,$(GREYDB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^
$(LIBSPAMD): $(call obj,$(SPAMD_LIB_SRC))
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^
$(LIBPFSYNC): $(call obj,$(PFSYNC_SRC))
	@mkdir -p $(dir $@)
	rm -f $@; ar rcs $@ $^

$(BUILD)/greyctl: $(call obj,$(GREYCTL_SRC)) $(ALLLIBS)
	$(CC) $(LDFLAGS) -o $@ $(call obj,$(GREYCTL_SRC)) $(LINKLIBS)
$(BUILD)/spamd: $(call obj,spamd/main.c) $(ALLLIBS)
	$(CC) $(LDFLAGS) -o $@ $(call obj,spamd/main.c) $(LINKLIBS)
$(BUILD)/spamd-setup: $(call obj,spamd/setup/setup_main.c) $(ALLLIBS)
	$(CC) $(LDFLAGS) -o $@ $(call obj,spamd/setup/setup_main.c) $(LINKLIBS)
$(BUILD)/greylogd: $(call obj,pf-sync/greylogd_main.c) $(ALLLIBS)
	$(CC) $(LDFLAGS) -o $@ $(call obj,pf-sync/greylogd_main.c) $(LINKLIBS)
$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(ALLLIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LINKLIBS) $(TESTLIBS)
$(BUILD)/tests/helpers/%: $(BUILD)/obj/tests/helpers/%.o $(ALLLIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LINKLIBS)
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(ALLLIBS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(LINKLIBS)

# deps - install the Debian packages that are missing; silent when none is.
deps:
	@sh tests/deps.sh

# check - the whole suite; tests/run.sh prints the one summary line.
JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
# Every unit test runs under valgrind (tests/run.sh valgrind sets
# GREY_TEST_SMALL=1: test_greydb and test_sync shrink their longest loops
# there, every assertion kept), then the integration and system scripts
# with the daemon and tools under valgrind (tests/run.sh vgscripts), but
# for the slowest there, which print a skip line and are left to
# make check-sanitize (the list and times: vg_slow in tests/run.sh).
check: deps
	$(MAKE) -j$(JOBS) WERROR=1 all tests
	$(MAKE) -j$(JOBS) WERROR=1 BUILD=build/asan SAN=1 all tests
	sh tests/run.sh check

# check-sanitize - the sanitizer passes alone: the scripts against the
# ASan+UBSan build, every unit test under valgrind, and every script with
# the daemon and tools under valgrind (VG_ALL=1: the slow ones too; about
# 20 minutes on 2 cores for that part).
check-sanitize: deps
	$(MAKE) -j$(JOBS) WERROR=1 all tests
	$(MAKE) -j$(JOBS) WERROR=1 BUILD=build/asan SAN=1 all tests
	sh tests/run.sh sanitize
	sh tests/run.sh valgrind
	VG_ALL=1 sh tests/run.sh vgscripts

unit: all tests
	sh tests/run.sh unit
integration: all tests
	sh tests/run.sh integration
system: all tests
	sh tests/run.sh system

bench: deps
	$(MAKE) all tests $(BENCH_BINS)
	sh bench/run.sh

fuzz: deps
	sh tests/fuzz/run.sh

# run - spamd on loopback in the foreground with a database in ./spamd-db.
run: deps
	$(MAKE) -j$(JOBS) all
	sh tests/run-demo.sh

# install - the daemon goes in as spamd-tarpit: Debian's SpamAssassin
# already installs /usr/sbin/spamd, and mail hosts often run both. The
# systemd units are made from etc/*.service.in with this install's paths
# (so PREFIX=/usr gives a unit that runs /usr/sbin/spamd-tarpit), into
# UNITDIR ($(PREFIX)/lib/systemd/system is on systemd's search path for
# /usr/local and /usr; debian/rules says /lib/systemd/system). The
# nftables rulesets go to $(SYSCONFDIR)/spamd/ (spamd.nft, which
# spamd-tarpit-nft.service loads, and spamd-greylogd.nft); an existing one is kept (it is the
# operator's once edited).
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
SBINDIR = $(DESTDIR)$(PREFIX)/sbin
EXDIR   = $(DESTDIR)$(PREFIX)/share/doc/spamd-tarpit/examples
MANDIR  = $(DESTDIR)$(PREFIX)/share/man
MANPAGES = $(wildcard spamd/*.[58] greydb/*.8 pf-sync/*.8)
UNITS   = $(patsubst etc/%.service.in,%.service,$(wildcard etc/*.service.in))
install: all
	install -d $(SBINDIR) $(EXDIR) $(DESTDIR)$(UNITDIR) \
		$(DESTDIR)$(SYSCONFDIR)/spamd
	install -m 0755 $(BUILD)/spamd $(SBINDIR)/spamd-tarpit
	install -m 0755 $(filter-out $(BUILD)/spamd,$(PROGS)) $(SBINDIR)/
	install -m 0644 $(filter-out %.in,$(wildcard etc/*)) $(EXDIR)/
	for u in $(UNITS); do \
		sed -e 's|@SBINDIR@|$(PREFIX)/sbin|g' \
		    -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' etc/$$u.in \
		    >$(DESTDIR)$(UNITDIR)/$$u.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && \
		mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u; done
	for f in spamd.nft spamd-greylogd.nft; do \
		[ -e $(DESTDIR)$(SYSCONFDIR)/spamd/$$f ] || \
		install -m 0644 etc/$$f $(DESTDIR)$(SYSCONFDIR)/spamd/; done
	for m in $(MANPAGES); do \
		s=$${m##*.}; install -d $(MANDIR)/man$$s; \
		install -m 0644 $$m $(MANDIR)/man$$s/; done

clean:
	rm -rf build

# dist - release tarball spamd-tarpit-VERSION.tar.gz of the committed tree
# (git archive HEAD: uncommitted edits are not in it).
VERSION := $(shell cat VERSION 2>/dev/null)
dist:
	git archive --format=tar.gz --prefix=spamd-tarpit-$(VERSION)/ \
		-o spamd-tarpit-$(VERSION).tar.gz HEAD
	@echo spamd-tarpit-$(VERSION).tar.gz

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
