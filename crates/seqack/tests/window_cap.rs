//! Receiver-side SWS avoidance (RFC 9293 3.8.6.2.2) when the window is limited by the
//! 16-bit field rather than by the buffer: with no window scaling and a buffer larger
//! than 65535, a window at that maximum is fully open and is advertised as such after
//! a FIN or a little unread data, as Linux and FreeBSD do; holding the right edge
//! there would advertise 65534, 65436, ... for no benefit (no sender can see a silly
//! window in a maximal one).

mod common;

use common::*;
use seqack::tcp::Config;
use seqack::wire::tcp::Flags;

/// No window scaling; the default 256 KiB buffer, far above what 16 bits can offer.
fn unscaled() -> Config {
    plain_config()
}

#[test]
fn the_ack_of_a_fin_keeps_the_maximal_window() {
    let mut f = conn_established_with(unscaled());
    f.inject(&seg(Flags::ACK | Flags::FIN, irs(1), iss(1), b""));
    // The ACK of a FIN that moves to CLOSE_WAIT is delayed (Linux).
    f.expect_nothing();
    f.fire_next();
    let ack = f.expect_one();
    assert_eq!((ack.ack, ack.window), (irs(2), 65535));
}

#[test]
fn a_little_unread_data_keeps_the_maximal_window() {
    let mut f = conn_established_with(unscaled());
    f.inject(&seg(Flags::ACK, irs(1), iss(1), &[7u8; 99]));
    let ack = f.transmit().last().cloned().expect("an ACK");
    assert_eq!((ack.ack, ack.window), (irs(100), 65535));
}

#[test]
fn a_buffer_limited_window_still_holds_its_right_edge() {
    // 10,000 bytes of buffer: 100 unread bytes shrink the offer to 9,900 and the right
    // edge stays where it was.
    let mut f = conn_established_with(Config {
        recv_buffer: 10_000,
        ..unscaled()
    });
    f.inject(&seg(Flags::ACK, irs(1), iss(1), &[7u8; 100]));
    let ack = f.transmit().last().cloned().expect("an ACK");
    assert_eq!((ack.ack, ack.window), (irs(101), 9_900));
}
