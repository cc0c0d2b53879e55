//! Counters named as Linux's `nstat` names them, so users can read them without a manual.

macro_rules! counters {
    ($( $(#[$doc:meta])* $field:ident => $name:literal, )*) => {
        /// MIB counters of one stack (or one standalone connection).
        #[derive(Clone, Debug, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[$doc])* pub $field: u64, )*
        }

        impl Counters {
            /// Every counter as `(nstat name, value)`, in a fixed order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$( ($name, self.$field), )*].into_iter()
            }

            /// Adds every counter of `other` into `self`.
            pub fn add(&mut self, other: &Counters) {
                $( self.$field += other.$field; )*
            }

            /// The value of the counter with this nstat name.
            pub fn get(&self, name: &str) -> Option<u64> {
                match name {
                    $( $name => Some(self.$field), )*
                    _ => None,
                }
            }
        }
    };
}

counters! {
    /// Connections that went SYN_SENT from CLOSED.
    active_opens => "TcpActiveOpens",
    /// Connections that went SYN_RECEIVED from LISTEN.
    passive_opens => "TcpPassiveOpens",
    /// Failed attempts: SYN_SENT or SYN_RECEIVED to CLOSED, SYN_RECEIVED to LISTEN.
    attempt_fails => "TcpAttemptFails",
    /// ESTABLISHED or CLOSE_WAIT connections reset.
    estab_resets => "TcpEstabResets",
    /// Half-open (passively opened SYN_RECEIVED) connections reset by an RST or a new
    /// SYN in the window.
    embryonic_rsts => "TcpExtEmbryonicRsts",
    /// Bare ACKs completing a handshake dropped under TCP_DEFER_ACCEPT.
    defer_accept_drops => "TcpExtTCPDeferAcceptDrop",
    /// Segments received (including erroneous ones).
    in_segs => "TcpInSegs",
    /// Segments sent, excluding retransmissions.
    out_segs => "TcpOutSegs",
    /// Segments retransmitted.
    retrans_segs => "TcpRetransSegs",
    /// Segments received in error (bad checksum, malformed header or options).
    in_errs => "TcpInErrs",
    /// Bad TCP checksums.
    in_csum_errors => "TcpInCsumErrors",
    /// Data segments taken by header prediction, the fast path for in-order data.
    hp_hits => "TcpExtTCPHPHits",
    /// RST segments sent.
    out_rsts => "TcpOutRsts",
    /// SYN cookies sent.
    syncookies_sent => "TcpExtSyncookiesSent",
    /// Valid SYN cookies received.
    syncookies_recv => "TcpExtSyncookiesRecv",
    /// Invalid SYN cookies received.
    syncookies_failed => "TcpExtSyncookiesFailed",
    /// Connections that entered TIME_WAIT.
    tw => "TcpExtTW",
    /// TIME_WAIT 4-tuples reused by a new SYN.
    tw_recycled => "TcpExtTWRecycled",
    /// RSTs ignored in TIME_WAIT (RFC 1337).
    tw_rst_ignored => "TcpExtTWRstIgnored",
    /// TIME_WAIT records refused because the table was full (`tcp_max_tw_buckets`).
    tw_overflow => "TcpExtTCPTimeWaitOverflow",
    /// Accept queue overflows.
    listen_overflows => "TcpExtListenOverflows",
    /// SYNs dropped at a listener for any reason.
    listen_drops => "TcpExtListenDrops",
    /// Active opens whose SYN's data the server acknowledged (RFC 7413).
    fastopen_active => "TcpExtTCPFastOpenActive",
    /// Active opens whose SYN carried data the server did not acknowledge.
    fastopen_active_fail => "TcpExtTCPFastOpenActiveFail",
    /// Challenge ACKs sent (RFC 5961).
    challenge_acks => "TcpExtTCPChallengeACK",
    /// SYNs in a synchronized state answered with a challenge ACK.
    syn_challenge => "TcpExtTCPSYNChallenge",
    /// Challenge ACKs not sent because of the per-connection rate limit.
    ack_skipped_challenge => "TcpExtTCPACKSkippedChallenge",
    /// ACKs for out-of-window segments not sent because of the rate limit.
    ack_skipped_seq => "TcpExtTCPACKSkippedSeq",
    /// ACKs for segments failing PAWS not sent because of the rate limit.
    ack_skipped_paws => "TcpExtTCPACKSkippedPAWS",
    /// ACKs (or SYN-ACK retransmissions) of a half-open connection not sent because of
    /// the rate limit.
    ack_skipped_syn_recv => "TcpExtTCPACKSkippedSynRecv",
    /// ACKs from TIME_WAIT not sent because of the rate limit.
    ack_skipped_time_wait => "TcpExtTCPACKSkippedTimeWait",
    /// Segments rejected by PAWS (RFC 7323).
    paws_estab_rejected => "TcpExtPAWSEstab",
    /// Retransmission timeouts.
    timeouts => "TcpExtTCPTimeouts",
    /// Fast retransmits.
    fast_retrans => "TcpExtTCPFastRetrans",
    /// Loss recoveries driven by the SACK scoreboard (RFC 6675).
    sack_recovery => "TcpExtTCPSackRecovery",
    /// Loss recoveries without SACK (NewReno, RFC 6582).
    reno_recovery => "TcpExtTCPRenoRecovery",
    /// Tail loss probes sent (RFC 8985 section 7).
    loss_probes => "TcpExtTCPLossProbes",
    /// Losses a tail loss probe repaired (the window was reduced for them).
    loss_probe_recovery => "TcpExtTCPLossProbeRecovery",
    /// Segments RACK declared lost (RFC 8985).
    rack_lost => "TcpExtTCPRackLoss",
    /// Connections aborted on close() with unread data.
    abort_on_close => "TcpExtTCPAbortOnClose",
    /// Connections aborted because data arrived after close().
    abort_on_data => "TcpExtTCPAbortOnData",
    /// Connections aborted on close() with SO_LINGER 0.
    abort_on_linger => "TcpExtTCPAbortOnLinger",
    /// Connections aborted by retransmission or keepalive timeouts.
    abort_on_timeout => "TcpExtTCPAbortOnTimeout",
    /// Out-of-order segments queued.
    ofo_queue => "TcpExtTCPOFOQueue",
    /// Out-of-order segments dropped (queue full).
    ofo_drop => "TcpExtTCPOFODrop",
    /// Segments with only duplicate data.
    dup_data => "TcpExtTCPDSACKRecv",
    /// Zero-window probes sent.
    win_probes => "TcpExtTCPWinProbe",
    /// Keepalive probes sent.
    keepalive_probes => "TcpExtTCPKeepAlive",
    /// Delayed ACKs sent.
    delayed_acks => "TcpExtDelayedACKs",
    /// Segments that matched no connection or listener (answered with RST).
    no_port => "TcpExtTCPNoPort",
    /// Segments dropped for their control bits alone: at a listener an RST, a segment
    /// with neither SYN nor ACK, or SYN+FIN; at a connection a segment in the window
    /// with none of SYN, RST and ACK; in SYN_SENT one with neither SYN nor RST (Linux
    /// drops these with the reason TCP_FLAGS and counts no MIB).
    flags_drop => "TcpExtTCPFlagsDrop",
    /// Every packet dropped below TCP, whatever the reason (the IpIn* and IpExt*
    /// counters below say which; each packet is in exactly one of IpInHdrErrors,
    /// IpExtInTruncatedPkts, IpReasmFails, IpInAddrErrors and IpInUnknownProtos).
    ip_drops => "IpExtInDrops",
    /// IP headers in error: not version 4 or 6, shorter than the fixed header, a
    /// header length below 20 or past the end of the packet, a total length below the
    /// header length, a bad IPv4 header checksum, IPv6 extension headers past the
    /// payload.
    ip_in_hdr_errors => "IpInHdrErrors",
    /// IPv4 header checksums that did not verify (also in IpInHdrErrors, as Linux
    /// counts them).
    ip_in_csum_errors => "IpExtInCsumErrors",
    /// Packets shorter than their IP length field says.
    ip_in_truncated => "IpExtInTruncatedPkts",
    /// IP fragments: the stack does not reassemble, so each one is a failure.
    ip_reasm_fails => "IpReasmFails",
    /// Packets for an address that is not one of ours.
    ip_in_addr_errors => "IpInAddrErrors",
    /// Packets for us of a protocol other than TCP.
    ip_in_unknown_protos => "IpInUnknownProtos",
    /// Calls for output that stopped at a packet longer than the buffer the driver
    /// passed (it should hold the MTU): nothing was sent or changed, and the packet is
    /// the next one due. seqack's own; Linux allocates its packets and has no such
    /// case.
    out_buf_too_small => "SeqackOutBufTooSmall",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values() {
        let mut a = Counters {
            active_opens: 2,
            ..Default::default()
        };
        let b = Counters {
            active_opens: 3,
            out_rsts: 1,
            ..Default::default()
        };
        a.add(&b);
        assert_eq!(a.get("TcpActiveOpens"), Some(5));
        assert_eq!(a.get("TcpOutRsts"), Some(1));
        assert_eq!(a.get("Nope"), None);
        assert!(a.iter().any(|(n, v)| n == "TcpExtTW" && v == 0));
    }
}
