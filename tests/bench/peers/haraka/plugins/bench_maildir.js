// bench_maildir - Haraka as a bench peer: each message into a Maildir
// ($BENCH_MAILDIR): written to tmp/, fsync of the file, renamed into new/,
// then 250.  The directory new/ is NOT fsynced (neither Haraka's queue
// plugins nor smtp-server apps usually do; smtphookd's maildump fsync=yes
// does), so a crash may lose a message already answered 250.

const fs = require('node:fs')
const path = require('node:path')

let seq = 0

exports.register = function () {
    this.dir = process.env.BENCH_MAILDIR
    for (const sub of ['tmp', 'new', 'cur']) {
        fs.mkdirSync(path.join(this.dir, sub), { recursive: true })
    }
    this.register_hook('queue', 'maildir')
}

exports.maildir = function (next, connection) {
    const dir = this.dir
    const name = `${Date.now()}.P${process.pid}Q${++seq}.bench`
    const tmp = path.join(dir, 'tmp', name)
    connection.transaction.message_stream.get_data((buf) => {
        const fail = (err) => {
            connection.logerror(this, `maildir: ${err.message}`)
            fs.unlink(tmp, () => next(DENYSOFT, 'maildir write failed'))
        }
        fs.open(tmp, 'wx', 0o600, (err, fd) => {
            if (err) return next(DENYSOFT, 'maildir open failed')
            fs.write(fd, buf, 0, buf.length, null, (err) => {
                if (err) return fs.close(fd, () => fail(err))
                fs.fsync(fd, (err) => {
                    fs.close(fd, (err2) => {
                        if (err || err2) return fail(err || err2)
                        fs.rename(tmp, path.join(dir, 'new', name), (err) => {
                            if (err) return fail(err)
                            next(OK)
                        })
                    })
                })
            })
        })
    })
}
