//! WebSocket frames as a server reads and writes them (RFC 6455, section
//! 5), without I/O: [`decode`] reads the client frame at the start of some
//! bytes and assembles fragmented messages; [`header`] writes the header of
//! a server frame.
//!
//! A session's socket drives these over its connection (`handle::websocket`,
//! [ADR 0029](../../../docs/adr/0029-herald-reads-and-writes-its-own-frames.md)):
//! between frames nothing is kept but the start of a fragmented message,
//! which clients seldom send. tungstenite's `Message` and `CloseFrame` are
//! the vocabulary, as the sessions speak it.
//!
//! No extension is negotiated, so every reserved bit must be clear. A
//! length not written in its fewest bytes is accepted, as tungstenite and
//! browsers accept it.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// The opcodes of RFC 6455 (section 5.2); the others are reserved.
pub mod opcode {
    pub const CONTINUATION: u8 = 0x0;
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// The longest header a server writes: 2 bytes and 8 of length (a
/// server's frames are not masked).
pub const MAX_SERVER_HEADER: usize = 10;

/// The most a control frame carries (section 5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// What makes a client's bytes not WebSocket frames: the server fails the
/// connection with [`FrameError::close_code`] (section 7.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a frame from the client without a mask")]
    Unmasked,
    #[error("reserved bits set, with no extension to mean anything by them")]
    ReservedBits,
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    #[error("a payload length with its most significant bit set")]
    LengthTooLong,
    #[error("a control frame in fragments")]
    FragmentedControl,
    #[error("a control frame longer than 125 bytes")]
    ControlTooLong,
    #[error("a continuation frame with no message to continue")]
    NothingToContinue,
    #[error("a new message before the last one's final fragment")]
    UnfinishedMessage,
    #[error("a close frame of one byte")]
    CloseOfOneByte,
    #[error("close code {0}, which no endpoint may send")]
    CloseCode(u16),
    #[error("text that is not UTF-8")]
    NotUtf8,
}

impl FrameError {
    /// The close code the connection is failed with: 1007 for text that is
    /// not UTF-8, 1002 (a protocol error) for the rest.
    pub fn close_code(self) -> u16 {
        match self {
            FrameError::NotUtf8 => 1007,
            _ => 1002,
        }
    }
}

/// A message whose final fragment has not arrived yet.
#[derive(Debug)]
pub struct Fragments {
    text: bool,
    /// The payloads so far, unmasked.
    bytes: Vec<u8>,
    /// How many of them are known to be UTF-8 (text only): a message that
    /// cannot become UTF-8 fails at the fragment that shows it.
    valid: usize,
}

/// What [`decode`] found.
#[derive(Debug)]
pub enum Decoded {
    /// The bytes do not hold a whole frame yet: at least `needed` do, from
    /// the frame's first byte.
    Incomplete { needed: usize },
    /// A whole frame of `used` bytes, and the message it makes, if it ends
    /// one (a control frame is a message of its own).
    Frame { used: usize, message: Option<Message> },
    /// A frame that would make a message longer than the limit, refused
    /// from its header (`used` bytes): its `payload` bytes follow, to be
    /// read past rather than kept. The message it would have continued is
    /// dropped. `size` is what the message would have come to.
    TooLarge { used: usize, payload: u64, size: u64 },
}

/// Decodes the client frame at the start of `bytes`, continuing
/// `fragments` if it is a continuation. A message longer than
/// `max_message` bytes is refused from the header that shows it, before
/// its payload arrives.
pub fn decode(bytes: &[u8], fragments: &mut Option<Box<Fragments>>, max_message: usize) -> Result<Decoded, FrameError> {
    let Some(head) = Header::parse(bytes)? else {
        return Ok(Decoded::Incomplete { needed: Header::needed(bytes) });
    };
    if head.opcode & 0x8 != 0 {
        if !head.fin {
            return Err(FrameError::FragmentedControl);
        }
        if head.len > MAX_CONTROL_PAYLOAD as u64 {
            return Err(FrameError::ControlTooLong);
        }
    } else {
        match (head.opcode, fragments.is_some()) {
            (opcode::CONTINUATION, false) => return Err(FrameError::NothingToContinue),
            (opcode::TEXT | opcode::BINARY, true) => return Err(FrameError::UnfinishedMessage),
            _ => {}
        }
        let so_far = fragments.as_ref().map_or(0, |message| message.bytes.len() as u64);
        let size = so_far.saturating_add(head.len);
        if size > max_message as u64 {
            *fragments = None;
            return Ok(Decoded::TooLarge { used: head.size, payload: head.len, size });
        }
    }
    // At most 125 bytes, or `max_message`: a `usize`.
    let end = head.size + head.len as usize;
    let Some(payload) = bytes.get(head.size..end) else {
        return Ok(Decoded::Incomplete { needed: end });
    };
    let message = match head.opcode {
        opcode::PING => Some(Message::Ping(unmasked(payload, head.mask).into())),
        opcode::PONG => Some(Message::Pong(unmasked(payload, head.mask).into())),
        opcode::CLOSE => Some(Message::Close(close_frame(unmasked(payload, head.mask))?)),
        opcode::CONTINUATION => {
            let Some(message) = fragments.as_mut() else { unreachable!("checked above") };
            unmask_onto(&mut message.bytes, payload, head.mask);
            message.check_utf8()?;
            match head.fin {
                true => fragments.take().map(|message| whole(message.text, message.bytes)).transpose()?,
                false => None,
            }
        }
        data => {
            let text = data == opcode::TEXT;
            let bytes = unmasked(payload, head.mask);
            if head.fin {
                Some(whole(text, bytes)?)
            } else {
                let mut message = Box::new(Fragments { text, bytes, valid: 0 });
                message.check_utf8()?;
                *fragments = Some(message);
                None
            }
        }
    };
    Ok(Decoded::Frame { used: end, message })
}

impl Fragments {
    /// Fails text whose bytes so far cannot begin UTF-8, whatever follows.
    fn check_utf8(&mut self) -> Result<(), FrameError> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.bytes[self.valid..]) {
            Ok(_) => self.valid = self.bytes.len(),
            // A character cut at the end may be finished by the next fragment.
            Err(e) if e.error_len().is_none() => self.valid += e.valid_up_to(),
            Err(_) => return Err(FrameError::NotUtf8),
        }
        Ok(())
    }
}

/// A client frame's header.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// The payload's length.
    len: u64,
    /// The header's own length.
    size: usize,
}

impl Header {
    /// The header at the start of `bytes`, or `None` if they end first.
    fn parse(bytes: &[u8]) -> Result<Option<Header>, FrameError> {
        let [first, second, ..] = *bytes else { return Ok(None) };
        if first & 0x70 != 0 {
            return Err(FrameError::ReservedBits);
        }
        let opcode = first & 0x0F;
        if !matches!(
            opcode,
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY | opcode::CLOSE | opcode::PING | opcode::PONG
        ) {
            return Err(FrameError::ReservedOpcode(opcode));
        }
        if second & 0x80 == 0 {
            return Err(FrameError::Unmasked);
        }
        let (len, at) = match second & 0x7F {
            126 => match bytes.get(2..4) {
                Some(len) => (u64::from(u16::from_be_bytes([len[0], len[1]])), 4),
                None => return Ok(None),
            },
            127 => match bytes.get(2..10) {
                Some(len) => (u64::from_be_bytes(len.try_into().expect("8 bytes")), 10),
                None => return Ok(None),
            },
            len => (u64::from(len), 2),
        };
        if len >> 63 != 0 {
            return Err(FrameError::LengthTooLong);
        }
        let Some(mask) = bytes.get(at..at + 4) else { return Ok(None) };
        let mask = mask.try_into().expect("4 bytes");
        Ok(Some(Header { fin: first & 0x80 != 0, opcode, mask, len, size: at + 4 }))
    }

    /// The bytes a header needs that `bytes` begin but do not hold whole.
    fn needed(bytes: &[u8]) -> usize {
        match bytes.get(1).map(|second| second & 0x7F) {
            None => 2,
            Some(126) => 8,
            Some(127) => 14,
            Some(_) => 6,
        }
    }
}

/// A frame's payload, unmasked (section 5.3).
fn unmasked(payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(payload.len());
    unmask_onto(&mut bytes, payload, mask);
    bytes
}

/// Appends `payload` to `bytes`, unmasked: eight bytes at a time (a word
/// of the mask twice), which the compiler makes wider still; a plain
/// byte loop is not, and cost three times as much.
fn unmask_onto(bytes: &mut Vec<u8>, payload: &[u8], mask: [u8; 4]) {
    let start = bytes.len();
    bytes.extend_from_slice(payload);
    let [a, b, c, d] = mask;
    let wide = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut words = bytes[start..].chunks_exact_mut(8);
    for word in &mut words {
        let unmasked = u64::from_ne_bytes((&*word).try_into().expect("8 bytes")) ^ wide;
        word.copy_from_slice(&unmasked.to_ne_bytes());
    }
    // The rest starts at a multiple of 8, where the mask starts again.
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// A whole text or binary message.
fn whole(text: bool, bytes: Vec<u8>) -> Result<Message, FrameError> {
    match text {
        true => String::from_utf8(bytes).map(|text| Message::Text(text.into())).map_err(|_| FrameError::NotUtf8),
        false => Ok(Message::Binary(bytes.into())),
    }
}

/// A close frame's code and reason (section 5.5.1), which must be a code
/// an endpoint may send and UTF-8.
fn close_frame(payload: Vec<u8>) -> Result<Option<CloseFrame>, FrameError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(FrameError::CloseOfOneByte),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            if !CloseCode::from(code).is_allowed() {
                return Err(FrameError::CloseCode(code));
            }
            let reason = Utf8Bytes::try_from(Bytes::from(payload).slice(2..)).map_err(|_| FrameError::NotUtf8)?;
            Ok(Some(CloseFrame { code: code.into(), reason }))
        }
    }
}

/// The header of a final, unmasked frame of `opcode` with `len` bytes of
/// payload, and how many of its bytes are the header.
pub fn header(opcode: u8, len: usize) -> ([u8; MAX_SERVER_HEADER], usize) {
    let mut header = [0; MAX_SERVER_HEADER];
    header[0] = 0x80 | opcode;
    if len < 126 {
        header[1] = len as u8;
        (header, 2)
    } else if let Ok(len) = u16::try_from(len) {
        header[1] = 126;
        header[2..4].copy_from_slice(&len.to_be_bytes());
        (header, 4)
    } else {
        header[1] = 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (header, 10)
    }
}

/// A close frame's payload: the code, then the reason.
pub fn close_payload(frame: &CloseFrame) -> Bytes {
    let mut payload = Vec::with_capacity(2 + frame.reason.len());
    payload.extend_from_slice(&u16::from(frame.code).to_be_bytes());
    payload.extend_from_slice(frame.reason.as_bytes());
    payload.into()
}

#[cfg(test)]
mod tests {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A frame as tungstenite writes a client's: masked with [`MASK`].
    fn theirs(mut frame: Frame) -> Vec<u8> {
        frame.header_mut().mask = Some(MASK);
        let mut bytes = Vec::new();
        frame.format(&mut bytes).unwrap();
        bytes
    }

    fn data(opcode: Data, payload: &[u8], fin: bool) -> Vec<u8> {
        theirs(Frame::message(payload.to_vec(), OpCode::Data(opcode), fin))
    }

    /// Decodes every frame in `bytes`: the messages, or the first error.
    fn decode_all(bytes: &[u8]) -> Result<Vec<Message>, FrameError> {
        let mut fragments = None;
        let mut messages = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            match decode(&bytes[at..], &mut fragments, 1 << 20)? {
                Decoded::Frame { used, message } => {
                    at += used;
                    messages.extend(message);
                }
                other => panic!("{other:?} at {at}"),
            }
        }
        Ok(messages)
    }

    #[test]
    fn tungstenites_client_frames_read_as_what_they_carry() {
        for len in [0, 1, 7, 8, 9, 125, 126, 127, 65_535, 65_536, 70_001] {
            let text: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let bytes = data(Data::Text, text.as_bytes(), true);
            assert_eq!(decode_all(&bytes), Ok(vec![Message::text(text.clone())]), "{len} bytes");
            let bytes = data(Data::Binary, text.as_bytes(), true);
            assert_eq!(decode_all(&bytes), Ok(vec![Message::binary(text.into_bytes())]));
        }
        let control = [
            (theirs(Frame::ping(b"are you there".to_vec())), Message::Ping(Bytes::from_static(b"are you there"))),
            (theirs(Frame::pong(b"yes".to_vec())), Message::Pong(Bytes::from_static(b"yes"))),
            (theirs(Frame::close(None)), Message::Close(None)),
            (
                theirs(Frame::close(Some(CloseFrame { code: CloseCode::Away, reason: "bye ✓".into() }))),
                Message::Close(Some(CloseFrame { code: CloseCode::Away, reason: "bye ✓".into() })),
            ),
        ];
        for (bytes, message) in control {
            assert_eq!(decode_all(&bytes), Ok(vec![message]));
        }
    }

    #[test]
    fn fragments_make_one_message_and_control_frames_may_come_between() {
        let mut bytes = data(Data::Text, "{\"action\":".as_bytes(), false);
        bytes.extend(theirs(Frame::ping(b"p".to_vec())));
        bytes.extend(data(Data::Continue, "\"$ping\",\"id\":\"é".as_bytes(), false));
        bytes.extend(data(Data::Continue, "\"}".as_bytes(), true));
        assert_eq!(
            decode_all(&bytes),
            Ok(vec![Message::Ping(Bytes::from_static(b"p")), Message::text("{\"action\":\"$ping\",\"id\":\"é\"}")])
        );
        // A character cut between fragments is whole once both are in.
        let mut bytes = data(Data::Text, &"é".as_bytes()[..1], false);
        bytes.extend(data(Data::Continue, &"é".as_bytes()[1..], true));
        assert_eq!(decode_all(&bytes), Ok(vec![Message::text("é")]));
    }

    #[test]
    fn a_frame_cut_short_asks_for_the_bytes_it_needs() {
        let bytes = data(Data::Text, &[b'x'; 300], true);
        for cut in 0..bytes.len() {
            match decode(&bytes[..cut], &mut None, 1 << 20) {
                Ok(Decoded::Incomplete { needed }) => {
                    assert!(needed > cut && needed <= bytes.len(), "{cut}: {needed}");
                }
                other => panic!("{cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn what_the_rfc_forbids_fails_with_its_close_code() {
        let text = data(Data::Text, b"hi", true);
        let mut unmasked = text.clone();
        unmasked[1] &= 0x7F;
        let mut reserved = text.clone();
        reserved[0] |= 0x40;
        let mut opcode = text.clone();
        opcode[0] = 0x83;
        let mut control_opcode = text.clone();
        control_opcode[0] = 0x8B;
        let mut fragmented_ping = theirs(Frame::ping(b"p".to_vec()));
        fragmented_ping[0] &= 0x7F;
        let mut unfinished = data(Data::Text, b"a", false);
        unfinished.extend(data(Data::Text, b"b", true));
        let close = |payload: &[u8]| {
            let header = FrameHeader { opcode: OpCode::Control(Control::Close), ..FrameHeader::default() };
            theirs(Frame::from_payload(header, Bytes::copy_from_slice(payload)))
        };
        let cases = [
            (unmasked, FrameError::Unmasked),
            (reserved, FrameError::ReservedBits),
            (opcode, FrameError::ReservedOpcode(3)),
            (control_opcode, FrameError::ReservedOpcode(0xB)),
            (fragmented_ping, FrameError::FragmentedControl),
            (theirs(Frame::ping(vec![0; 126])), FrameError::ControlTooLong),
            (data(Data::Continue, b"a", true), FrameError::NothingToContinue),
            (unfinished, FrameError::UnfinishedMessage),
            (data(Data::Text, &[0xff, 0xfe], true), FrameError::NotUtf8),
            (data(Data::Text, &[b'a', 0xff], false), FrameError::NotUtf8),
            (close(&[3]), FrameError::CloseOfOneByte),
            (close(&1005u16.to_be_bytes()), FrameError::CloseCode(1005)),
            (close(&999u16.to_be_bytes()), FrameError::CloseCode(999)),
            (close(&[0x03, 0xe8, 0xff]), FrameError::NotUtf8),
        ];
        for (bytes, error) in cases {
            assert_eq!(decode_all(&bytes), Err(error), "{bytes:x?}");
            let code = if error == FrameError::NotUtf8 { 1007 } else { 1002 };
            assert_eq!(error.close_code(), code);
        }
        let mut huge = vec![0x81, 0xFF];
        huge.extend(u64::MAX.to_be_bytes());
        huge.extend(MASK);
        assert_eq!(decode(&huge, &mut None, usize::MAX).unwrap_err(), FrameError::LengthTooLong);
    }

    #[test]
    fn a_message_over_the_limit_is_refused_from_its_header() {
        let bytes = data(Data::Text, &[b'x'; 1000], true);
        match decode(&bytes[..8], &mut None, 999) {
            Ok(Decoded::TooLarge { used: 8, payload: 1000, size: 1000 }) => {}
            other => panic!("{other:?}"),
        }
        // Fragments count together, and the message they began is dropped.
        let mut fragments = None;
        let first = data(Data::Binary, &[1; 600], false);
        assert!(matches!(decode(&first, &mut fragments, 999), Ok(Decoded::Frame { message: None, .. })));
        let second = data(Data::Continue, &[2; 600], true);
        match decode(&second, &mut fragments, 999) {
            Ok(Decoded::TooLarge { used: 8, payload: 600, size: 1200 }) => {}
            other => panic!("{other:?}"),
        }
        assert!(fragments.is_none());
        // At the limit is fine.
        assert!(matches!(decode(&bytes, &mut None, 1000), Ok(Decoded::Frame { message: Some(_), .. })));
    }

    #[test]
    fn headers_are_tungstenites() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 100_000] {
            for (ours, theirs) in [(opcode::TEXT, Data::Text), (opcode::BINARY, Data::Binary)] {
                let frame = Frame::message(vec![b'a'; len], OpCode::Data(theirs), true);
                let mut expected = Vec::new();
                frame.header().format(len as u64, &mut expected).unwrap();
                let (header, header_len) = header(ours, len);
                assert_eq!(&header[..header_len], &expected[..], "{len} bytes");
            }
        }
        let frame = CloseFrame { code: CloseCode::Normal, reason: "done".into() };
        assert_eq!(&close_payload(&frame)[..], b"\x03\xe8done");
    }
}
