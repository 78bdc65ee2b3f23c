// bench_accept - Haraka as a bench peer: accept every recipient, and answer
// the rDNS lookup of the client (always 127.0.0.1) without asking DNS, so
// that no run waits on a resolver (smtphookd does no rDNS either).

exports.register = function () {
    this.register_hook('lookup_rdns', 'rdns')
    this.register_hook('rcpt', 'rcpt')
}

exports.rdns = (next) => next(OK, 'localhost')

exports.rcpt = (next) => next(OK)
