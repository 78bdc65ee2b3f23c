#!/usr/bin/env bash
# deps.sh - make sure the Debian packages smtphook needs are installed.
#
# usage: scripts/deps.sh [EXTRA-PACKAGE...]
#
# Quick and silent when everything is there. Otherwise, as root: apt-get
# install the missing packages (postfix is preseeded to "No configuration" so
# no MTA is configured or started on port 25); not as root: print the exact
# command to run and exit 1.
set -euo pipefail

build_pkgs=(gcc libc6-dev make cmake pkg-config libev-dev libcriterion-dev
	libssl-dev libpcre2-dev libc-ares-dev libcrypt-dev libhyperscan-dev)
test_pkgs=(swaks libnet-ssleay-perl python3 postfix postgrey postfix-policyd-spf-python
	dnsmasq-base haproxy valgrind openssl mandoc man-db
	g++)
want=("${build_pkgs[@]}" "${test_pkgs[@]}" "$@")

missing=()
for p in "${want[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*" ok installed") ;;
	*) missing+=("$p") ;;
	esac
done

[ ${#missing[@]} -eq 0 ] && exit 0

preseed='postfix postfix/main_mailer_type select No configuration'
need_postfix=0
for p in "${missing[@]}"; do
	[ "$p" = postfix ] && need_postfix=1
done

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages: ${missing[*]}" >&2
	echo "deps: install them with:" >&2
	if [ $need_postfix -eq 1 ]; then
		echo "  echo '$preseed' | sudo debconf-set-selections" >&2
	fi
	echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if [ $need_postfix -eq 1 ]; then
	# No MTA configured, nothing listening on port 25: only the postfix
	# test tools (smtp-source, smtp-sink) are wanted.
	echo "$preseed" | debconf-set-selections
	echo 'postfix postfix/mailname string localhost' | debconf-set-selections
fi
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null

# Check again: a package that apt could not provide must not pass silently.
still=()
for p in "${missing[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$status" in
	*" ok installed") ;;
	*) still+=("$p") ;;
	esac
done
if [ ${#still[@]} -ne 0 ]; then
	echo "deps: still missing after apt-get install: ${still[*]}" >&2
	exit 1
fi
