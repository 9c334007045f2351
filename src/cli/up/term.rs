//! The little `tapmesh up` asks of its terminal: its size, the escapes
//! that redraw the table in place, and whether stdout's reader is gone.

use std::os::fd::AsRawFd;

/// Back to the first line of a table `lines` long that ends just above the
/// cursor, and clear from there to the end of the screen.
pub(super) fn erase_above(lines: usize) -> String {
    match lines {
        0 => "\r\x1b[J".to_string(),
        n => format!("\r\x1b[{n}A\x1b[J"),
    }
}

/// The terminal's (columns, rows), if stdout is one.
pub(super) fn size() -> Option<(usize, usize)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let fd = std::io::stdout().as_raw_fd();
    // SAFETY: TIOCGWINSZ writes a `winsize` through the pointer, which
    // points at one that lives across the call.
    let got = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
    (got == 0 && size.ws_col > 0 && size.ws_row > 0)
        .then_some((size.ws_col as usize, size.ws_row as usize))
}

/// Stdout's reader is gone: a pipe whose reading end closed reports an
/// error (`POLLERR`), a terminal that hung up `POLLHUP`. A file, or a pipe
/// still read, reports neither.
pub(super) fn stdout_closed() -> bool {
    closed(std::io::stdout().as_raw_fd())
}

fn closed(fd: std::os::fd::RawFd) -> bool {
    let mut poll = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    ready > 0 && poll.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pipe_whose_reader_closed_is_seen_closed() {
        let mut fds = [0; 2];
        // SAFETY: pipe fills two fds; both are closed below.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        assert!(!closed(fds[1]));
        // SAFETY: closing the fds pipe() made.
        unsafe { libc::close(fds[0]) };
        assert!(closed(fds[1]));
        // SAFETY: as above.
        unsafe { libc::close(fds[1]) };
    }
}
