#!/usr/bin/env node
// smtp_server.js PORT [MAILDIR] - nodemailer's smtp-server as a bench peer
// (tests/bench/run_bench.py).  Listens on 127.0.0.1:PORT, no AUTH, no
// STARTTLS, no size or connection limit, no banner delay (see below), no
// DNS; accepts every sender and recipient.  Without MAILDIR each message is drained and
// discarded; with it, each is written to MAILDIR/tmp/, fsync of the file,
// renamed into new/, then 250.  The directory new/ is NOT fsynced (peers
// usually do not; smtphookd's maildump fsync=yes does).
'use strict'

const fs = require('node:fs')
const path = require('node:path')
const { SMTPServer } = require('smtp-server')
const { SMTPConnection } = require('smtp-server/lib/smtp-connection')

// smtp-server waits a fixed 100 ms before its greeting to catch early
// talkers (SMTPConnection.init, not an option in 3.21): with one message
// per connection (bench b) that pause, not the server, would be measured.
// The only change made to the library: init() without the pause.
if (typeof SMTPConnection.prototype._setListeners === 'function' &&
    typeof SMTPConnection.prototype.connectionReady === 'function') {
    SMTPConnection.prototype.init = function () {
        this._setListeners(() => this.connectionReady())
    }
} else {
    console.error('smtp_server.js: SMTPConnection changed; greeting pause kept')
}

const port = parseInt(process.argv[2], 10)
const maildir = process.argv[3]
if (!port) {
    console.error('usage: smtp_server.js PORT [MAILDIR]')
    process.exit(2)
}
if (maildir) {
    for (const sub of ['tmp', 'new', 'cur']) {
        fs.mkdirSync(path.join(maildir, sub), { recursive: true })
    }
}

let seq = 0

function store(buf, done) {
    const name = `${Date.now()}.P${process.pid}Q${++seq}.bench`
    const tmp = path.join(maildir, 'tmp', name)
    const fail = (err) => fs.unlink(tmp, () => done(err))
    fs.open(tmp, 'wx', 0o600, (err, fd) => {
        if (err) return done(err)
        fs.write(fd, buf, 0, buf.length, null, (err) => {
            if (err) return fs.close(fd, () => fail(err))
            fs.fsync(fd, (err) => {
                fs.close(fd, (err2) => {
                    if (err || err2) return fail(err || err2)
                    fs.rename(tmp, path.join(maildir, 'new', name), (err) => {
                        if (err) return fail(err)
                        done()
                    })
                })
            })
        })
    })
}

const server = new SMTPServer({
    name: 'bench.example',
    banner: 'bench peer',
    secure: false,
    disabledCommands: ['AUTH', 'STARTTLS'],
    hideSTARTTLS: true,
    authOptional: true,
    disableReverseLookup: true,
    logger: false,
    size: 0,
    maxClients: Infinity,
    socketTimeout: 60 * 1000,
    closeTimeout: 1000,
    onData(stream, session, callback) {
        if (!maildir) {
            stream.on('data', () => {})
            stream.on('end', () => callback())
            return
        }
        const chunks = []
        stream.on('data', (c) => chunks.push(c))
        stream.on('end', () => {
            store(Buffer.concat(chunks), (err) => {
                if (err) {
                    err.responseCode = 451
                    return callback(err)
                }
                callback()
            })
        })
    },
})

server.on('error', (err) => console.error('smtp-server:', err.message))
server.listen(port, '127.0.0.1')
for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => server.close(() => process.exit(0)))
}
