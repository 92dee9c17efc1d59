//! Live capture from one interface: an AF_PACKET socket with a TPACKET_V3 memory-mapped RX ring.
//!
//! The kernel fills fixed-size blocks of the ring with frames and hands a whole block over at
//! once (when it is full or its timeout expires); user space reads the frames in place, with no
//! system call and no copy per frame, and gives the block back. That is what lets one thread
//! keep up with a burst that the per-frame `recv_into` of portwatch/monitor/live.py drops.
//!
//! Several rings on one interface can share its traffic through `PACKET_FANOUT` (hash mode: the
//! kernel's flow hash, symmetric in addresses and ports, so both directions of a flow land on
//! the same ring). A classic-BPF program (compiled as portwatch/monitor/bpf.py does) runs in the
//! kernel before a frame is counted or copied.
//!
//! ```ignore
//! let mut ring = LiveRing::open("eth0", &RingOptions::default())?;
//! while running {
//!     if let Some(block) = ring.next_block(Duration::from_millis(100)) {
//!         for rec in block.frames() { /* rec.ts, rec.linktype (1), rec.data */ }
//!     } // the block goes back to the kernel here
//!     let s = ring.stats(); // cumulative: packets, drops, received, truncated...
//! }
//! ```
//!
//! Besides the prefetch hint (`cpu_cache.rs`), the crate's unsafe code lives here: system calls
//! and the shared mapping. The frames themselves are parsed by safe code over a byte slice of
//! one block, bounded by the block's length (`frames.rs`, which forbids unsafe code): a bad
//! header ends the walk of that block, it never panics.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::Record;

mod frames;

use frames::{summarize, Walk, BLK_STATUS};

/// One classic-BPF instruction, as `tcpdump -dd` prints it: (code, jt, jf, k).
pub type BpfInsn = (u16, u8, u8, u32);

/// The kernel's limit on a classic-BPF program (BPF_MAXINSNS).
pub const BPF_MAXINSNS: usize = 4096;

/// Link type of every frame an AF_PACKET SOCK_RAW socket delivers on Ethernet (LINKTYPE_ETHERNET).
pub const LINKTYPE_ETHERNET: u32 = 1;

const ETH_P_ALL: u16 = 0x0003;
// PACKET_FANOUT flags (linux/if_packet.h; not all in libc): reassemble IP fragments before
// hashing, so every fragment of a datagram lands on the ring of its flow; a kernel-chosen id.
const FANOUT_FLAG_DEFRAG: libc::c_int = 0x8000;
const FANOUT_FLAG_UNIQUEID: libc::c_int = 0x2000;
/// V3 ignores the frame size except for the ring geometry check; any TPACKET_ALIGNMENT multiple
/// that divides the block size will do.
const FRAME_SIZE: usize = 2048;
const MAX_BLOCK_SIZE: usize = 1 << 30;
const MAX_BLOCK_COUNT: usize = 1 << 16;
const MAX_RING_BYTES: usize = 1 << 34;

/// How a ring is built. The defaults hold 64 MiB of frames, about 45,000 full-size frames or
/// well over a second of a saturated gigabit link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingOptions {
    /// Bytes per block: a multiple of the page size.
    pub block_size: usize,
    pub block_count: usize,
    /// The kernel hands a partly filled block over after this long, so a quiet link still
    /// delivers its frames promptly.
    pub block_timeout_ms: u32,
    /// Join this PACKET_FANOUT group (hash mode): the sockets of one group on one interface
    /// share its frames, each flow on one socket.
    pub fanout: Option<u16>,
    /// With `fanout`: start a new group under an id the kernel picks (PACKET_FANOUT_FLAG_UNIQUEID;
    /// the id given is ignored), so no other process's group is joined by accident. The other
    /// members then join `fanout_group()` of this ring.
    pub fanout_new: bool,
    /// Classic BPF run by the kernel on every frame; None takes everything.
    pub filter: Option<Vec<BpfInsn>>,
    /// Put the interface in promiscuous mode while the ring is open (PACKET_ADD_MEMBERSHIP).
    pub promisc: bool,
}

impl Default for RingOptions {
    fn default() -> Self {
        RingOptions {
            block_size: 1 << 20,
            block_count: 64,
            block_timeout_ms: 50,
            fanout: None,
            fanout_new: false,
            filter: None,
            promisc: true,
        }
    }
}

/// Counters of one ring, cumulative since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Frames that passed the filter (PACKET_STATISTICS tp_packets, which counts drops too).
    pub packets: u64,
    /// Frames the kernel dropped because the ring was full (tp_drops).
    pub drops: u64,
    /// Times the ring was frozen because user space held every block (tp_freeze_q_cnt).
    pub freeze_q_cnt: u64,
    /// Frames handed out by `next_block`.
    pub received: u64,
    /// Of `received`, frames captured shorter than they were on the wire (tp_snaplen < tp_len).
    pub truncated: u64,
    /// Blocks whose frame list ended early on an inconsistent header (should stay 0).
    pub bad_blocks: u64,
    /// Errors the socket reported (the interface went down...).
    pub socket_errors: u64,
    /// The last of them (an errno, e.g. ENETDOWN), 0 if none.
    pub last_error: i32,
}

/// An open ring on one interface. Not shared between threads: open one ring per thread (with
/// `fanout`) to spread the load.
pub struct LiveRing {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    block_count: usize,
    current: usize,
    iface: String,
    stats: RingStats,
}

// SAFETY: the ring owns its socket and its mapping outright; nothing else refers to them, and
// every access goes through `&mut self` (a `Block` borrows the ring mutably), so moving the ring
// to another thread moves sole ownership of both.
unsafe impl Send for LiveRing {}

fn os_err(iface: &str, what: &str, err: io::Error) -> String {
    format!("{iface}: {what}: {err}")
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    let len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a live, initialised T for the duration of the call and `len` is its
    // exact size; the kernel copies the bytes in and keeps no pointer.
    let rc = unsafe { libc::setsockopt(fd, level, name, (value as *const T).cast(), len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn attach_filter(fd: RawFd, prog: &[BpfInsn]) -> io::Result<()> {
    let mut insns: Vec<libc::sock_filter> = prog
        .iter()
        .map(|&(code, jt, jf, k)| libc::sock_filter { code, jt, jf, k })
        .collect();
    let fprog = libc::sock_fprog {
        // The caller checked the length against BPF_MAXINSNS.
        len: insns.len() as u16,
        filter: insns.as_mut_ptr(),
    };
    // The kernel copies the program during the call: `insns` may go right after.
    setsockopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &fprog)
}

fn check_options(opts: &RingOptions) -> Result<(), String> {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(page).unwrap_or(4096).max(1);
    if opts.block_size < page.max(FRAME_SIZE)
        || opts.block_size > MAX_BLOCK_SIZE
        || !opts.block_size.is_multiple_of(page)
        || !opts.block_size.is_multiple_of(FRAME_SIZE)
    {
        return Err(format!(
            "ring block size {} must be a multiple of the page size ({page}) up to {MAX_BLOCK_SIZE}",
            opts.block_size
        ));
    }
    if opts.block_count == 0 || opts.block_count > MAX_BLOCK_COUNT {
        return Err(format!(
            "ring block count {} must be 1 to {MAX_BLOCK_COUNT}",
            opts.block_count
        ));
    }
    match opts.block_size.checked_mul(opts.block_count) {
        Some(n) if n <= MAX_RING_BYTES => {}
        _ => return Err(format!("ring larger than {MAX_RING_BYTES} bytes")),
    }
    if let Some(prog) = &opts.filter {
        if prog.is_empty() || prog.len() > BPF_MAXINSNS {
            return Err(format!(
                "BPF filter of {} instructions (the kernel takes 1 to {BPF_MAXINSNS})",
                prog.len()
            ));
        }
    }
    Ok(())
}

impl LiveRing {
    /// Open a ring on `iface`. Needs root or CAP_NET_RAW (not a memlock allowance: the ring's
    /// pages are the kernel's own, mapped into the process).
    pub fn open(iface: &str, opts: &RingOptions) -> Result<LiveRing, String> {
        check_options(opts)?;
        let name = CString::new(iface).map_err(|_| format!("{iface:?}: bad interface name"))?;
        if iface.is_empty() || iface.len() >= libc::IFNAMSIZ {
            return Err(format!("{iface:?}: bad interface name"));
        }
        // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if ifindex == 0 {
            return Err(format!("{iface}: no such interface"));
        }
        // Protocol 0 receives nothing until bind(): the filter and the ring are in place before
        // the first frame can arrive.
        // SAFETY: plain system call with constant arguments; the result is checked below.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            let err = io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => {
                    "opening a packet socket needs root or CAP_NET_RAW".to_owned()
                }
                _ => os_err(iface, "packet socket", err),
            });
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let sock = fd.as_raw_fd();

        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(sock, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .map_err(|e| os_err(iface, "TPACKET_V3", e))?;

        // In a fanout group, every member is bound (so receiving) for a moment before it
        // joins; a drop-everything filter over that moment keeps a frame from reaching two
        // members. The real filter replaces it once the socket has joined.
        const DROP_ALL: [BpfInsn; 1] = [(0x06, 0, 0, 0)];
        if opts.fanout.is_some() {
            attach_filter(sock, &DROP_ALL).map_err(|e| os_err(iface, "BPF filter", e))?;
        } else if let Some(prog) = &opts.filter {
            attach_filter(sock, prog).map_err(|e| os_err(iface, "BPF filter", e))?;
        }

        let req = libc::tpacket_req3 {
            tp_block_size: opts.block_size as u32,
            tp_block_nr: opts.block_count as u32,
            tp_frame_size: FRAME_SIZE as u32,
            tp_frame_nr: (opts.block_size / FRAME_SIZE * opts.block_count) as u32,
            tp_retire_blk_tov: opts.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(sock, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| os_err(iface, "PACKET_RX_RING", e))?;

        let map_len = opts.block_size * opts.block_count;
        // SAFETY: maps the ring the kernel just allocated for this socket, at an address of the
        // kernel's choosing; the result is checked against MAP_FAILED before any use.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                sock,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(os_err(
                iface,
                "mmap of the ring",
                io::Error::last_os_error(),
            ));
        }
        // From here on, dropping `ring` unmaps and closes on any error.
        let ring = LiveRing {
            fd,
            map: map.cast(),
            map_len,
            block_size: opts.block_size,
            block_count: opts.block_count,
            current: 0,
            iface: iface.to_owned(),
            stats: RingStats::default(),
        };

        let ifindex_c = ifindex as libc::c_int;
        if opts.promisc {
            let mreq = libc::packet_mreq {
                mr_ifindex: ifindex_c,
                mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(sock, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| os_err(iface, "promiscuous mode", e))?;
        }

        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as libc::c_ushort;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex_c;
        // SAFETY: `sll` is a live sockaddr_ll and the length passed is its size.
        let rc = unsafe {
            libc::bind(
                sock,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(os_err(iface, "bind", io::Error::last_os_error()));
        }

        if let Some(group) = opts.fanout {
            // The kernel's fanout hash is symmetric (__skb_get_hash_symmetric, recomputed from
            // the headers whatever hash the NIC gave): both directions of a flow share a ring.
            let mut mode = libc::PACKET_FANOUT_HASH as libc::c_int | FANOUT_FLAG_DEFRAG;
            let mut id = libc::c_int::from(group);
            if opts.fanout_new {
                mode |= FANOUT_FLAG_UNIQUEID;
                id = 0;
            }
            let arg: libc::c_int = id | (mode << 16);
            setsockopt(sock, libc::SOL_PACKET, libc::PACKET_FANOUT, &arg)
                .map_err(|e| os_err(iface, &format!("PACKET_FANOUT group {group}"), e))?;
            match &opts.filter {
                Some(prog) => attach_filter(sock, prog),
                None => setsockopt(sock, libc::SOL_SOCKET, libc::SO_DETACH_FILTER, &0i32),
            }
            .map_err(|e| os_err(iface, "BPF filter", e))?;
        }
        Ok(ring)
    }

    /// The PACKET_FANOUT group this ring belongs to, if any (the id the kernel chose for
    /// `fanout_new`).
    pub fn fanout_group(&self) -> Option<u16> {
        let mut val: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `val` and `len` are live and `len` holds the size of `val`.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                (&mut val as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 || val == 0 {
            return None;
        }
        Some((val & 0xffff) as u16)
    }

    /// The interface's name, as given to `open`.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    fn status(&self, index: usize) -> &AtomicU32 {
        // SAFETY: `index < block_count`, so the address is inside the mapping, which lives as
        // long as `self`; it is 4-byte aligned (blocks are page-aligned, the status is at 8).
        // The kernel and we only ever access this word atomically (the kernel with
        // smp_wmb/smp_rmb around plain stores), so an AtomicU32 view of it is sound.
        unsafe { AtomicU32::from_ptr(self.map.add(index * self.block_size + BLK_STATUS).cast()) }
    }

    fn ready(&self, index: usize) -> bool {
        self.status(index).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// The next block of frames, waiting up to `timeout` for one; None when none came (or the
    /// wait was interrupted). The block goes back to the kernel when it is dropped.
    pub fn next_block(&mut self, timeout: Duration) -> Option<Block<'_>> {
        let start = Instant::now();
        loop {
            if self.ready(self.current) {
                return Some(self.take_block());
            }
            let left = timeout.saturating_sub(start.elapsed());
            if left.is_zero() {
                return None;
            }
            let ms = left.as_millis().clamp(1, i32::MAX as u128) as libc::c_int;
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            };
            // SAFETY: `pfd` is one live pollfd and the count passed is 1.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                // EINTR: let the caller look at its stop flag.
                return None;
            }
            if pfd.revents & libc::POLLERR != 0 {
                self.clear_socket_error();
            }
        }
    }

    fn clear_socket_error(&mut self) {
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `err` and `len` are live and `len` holds the size of `err`.
        unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        self.stats.socket_errors += 1;
        self.stats.last_error = err;
    }

    fn take_block(&mut self) -> Block<'_> {
        let index = self.current;
        self.current = (index + 1) % self.block_count;
        // SAFETY: the block at `index` is inside the mapping and its status says TP_STATUS_USER
        // (read with Acquire, pairing with the kernel's barrier before it set the status): the
        // kernel wrote all of it before handing it over and does not touch it again until the
        // status is set back to TP_STATUS_KERNEL, which only `Block::drop` does. The slice
        // lives only within this function.
        let bytes = unsafe {
            std::slice::from_raw_parts(self.map.add(index * self.block_size), self.block_size)
        };
        let summary = summarize(bytes);
        self.stats.received += summary.frames as u64;
        self.stats.truncated += summary.truncated;
        if summary.bad {
            self.stats.bad_blocks += 1;
        }
        Block {
            // SAFETY: `index < block_count`, so the block lies inside the mapping.
            base: unsafe { self.map.add(index * self.block_size) },
            used: summary.len,
            count: summary.frames,
            first: summary.first,
            status: self.status(index),
            _ring: PhantomData,
        }
    }

    fn read_kernel_stats(&mut self) {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: `st` and `len` are live and `len` holds the size of `st`; the kernel writes
        // at most `len` bytes.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            self.stats.packets += u64::from(st.tp_packets);
            self.stats.drops += u64::from(st.tp_drops);
            self.stats.freeze_q_cnt += u64::from(st.tp_freeze_q_cnt);
        }
    }

    /// Cumulative counters. The kernel resets its own on every read; they are added up here.
    pub fn stats(&mut self) -> RingStats {
        self.read_kernel_stats();
        self.stats
    }
}

impl Drop for LiveRing {
    fn drop(&mut self) {
        // SAFETY: `map`/`map_len` are exactly what mmap returned, and no `Block` can outlive the
        // `&mut self` borrow it holds, so nothing refers into the mapping any more. The socket
        // closes after this (field drop), which also leaves promiscuous mode and the group.
        unsafe { libc::munmap(self.map.cast(), self.map_len) };
    }
}

/// A block of frames lent by the kernel; it goes back to the kernel when dropped.
pub struct Block<'a> {
    base: *const u8,
    /// Bytes of the block in use.
    used: usize,
    /// Sound frames in the block.
    count: usize,
    first: usize,
    status: &'a AtomicU32,
    _ring: PhantomData<&'a mut LiveRing>,
}

impl Block<'_> {
    fn bytes(&self) -> &[u8] {
        // SAFETY: `base..base + used` lies inside one block of the mapping (len <= block size),
        // which stays mapped while the ring is borrowed by this Block, and which the kernel
        // leaves alone until `drop` hands it back; the slice cannot outlive `&self`.
        unsafe { std::slice::from_raw_parts(self.base, self.used) }
    }

    /// How many frames the block holds.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The frames, in arrival order, as Ethernet records borrowed from the ring.
    pub fn frames(&self) -> impl Iterator<Item = Record<'_>> {
        self.frames_with_len().map(|(rec, _)| rec)
    }

    /// The frames with their length on the wire (larger than `data` for a truncated capture).
    pub fn frames_with_len(&self) -> impl Iterator<Item = (Record<'_>, u32)> {
        Walk {
            block: self.bytes(),
            off: self.first,
            left: self.count,
        }
        .map(|f| {
            (
                Record {
                    ts: f.ts,
                    linktype: LINKTYPE_ETHERNET,
                    data: f.data,
                    orig_len: f.wire_len,
                },
                f.wire_len,
            )
        })
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        // Release: our reads of the block happen before the kernel may write it again.
        self.status.store(libc::TP_STATUS_KERNEL, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_checked() {
        let bad = |o: RingOptions| check_options(&o).is_err();
        let d = RingOptions::default();
        assert!(check_options(&d).is_ok());
        assert!(bad(RingOptions {
            block_size: 1000,
            ..d.clone()
        }));
        assert!(bad(RingOptions {
            block_count: 0,
            ..d.clone()
        }));
        assert!(bad(RingOptions {
            filter: Some(vec![]),
            ..d.clone()
        }));
        assert!(bad(RingOptions {
            filter: Some(vec![(6, 0, 0, 0); 4097]),
            ..d.clone()
        }));
        assert!(LiveRing::open("no-such-if0", &d).is_err());
        assert!(LiveRing::open("bad\0name", &d).is_err());
    }
}
