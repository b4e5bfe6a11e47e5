//! The WebSocket frame decoder: every byte a client sends after its
//! upgrade (`herald_edge::frames::decode`), with a message limit taken
//! from the input's first byte.
//!
//! - Decoding never panics, whatever the bytes and the limit.
//! - It reads frame after frame: a whole frame is at least its 6-byte
//!   header and no longer than the bytes; a frame cut short asks for more
//!   than there are, and any shorter cut of a whole frame is cut short
//!   too; a refused frame's header is within the bytes, and the message
//!   it would make is over the limit.
//! - Encode → decode: every message read, written again as a client
//!   writes it (tungstenite's encoder, masked, in one frame), reads back
//!   as the same message; a server's header (`frames::header`) reads back
//!   with tungstenite's parser as the opcode and length it was given.

use std::io::Cursor;

use herald_edge::frames::{self, Decoded, opcode};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::{Frame, FrameHeader};

pub fn run(data: &[u8]) {
    let Some((&limit, mut bytes)) = data.split_first() else { return };
    // From tiny to larger than any input: 0, 4, ..., 1,020, or unlimited.
    let max_message = if limit == u8::MAX { usize::MAX } else { usize::from(limit) * 4 };
    let mut fragments = None;
    while !bytes.is_empty() {
        let Ok(decoded) = frames::decode(bytes, &mut fragments, max_message) else { return };
        match decoded {
            Decoded::Frame { used, message } => {
                assert!((6..=bytes.len()).contains(&used), "{used} of {}", bytes.len());
                let shorter = frames::decode(&bytes[..used - 1], &mut None, max_message);
                assert!(!matches!(shorter, Ok(Decoded::Frame { .. })), "a frame shorter than itself");
                if let Some(message) = message {
                    reads_back(&message, max_message);
                }
                bytes = &bytes[used..];
            }
            Decoded::Incomplete { needed } => {
                assert!(needed > bytes.len(), "{needed} needed of {}", bytes.len());
                return;
            }
            Decoded::TooLarge { used, payload, size } => {
                assert!(used <= bytes.len() && size > max_message as u64 && size >= payload);
                assert!(fragments.is_none(), "a refused message is dropped");
                let skipped = usize::try_from(payload).unwrap_or(usize::MAX).saturating_add(used);
                bytes = bytes.get(skipped..).unwrap_or_default();
            }
        }
    }
}

/// `message`, written as a client writes it, reads back as itself.
fn reads_back(message: &Message, max_message: usize) {
    let (code, payload) = match message {
        Message::Text(text) => (OpCode::Data(Data::Text), text.as_bytes().to_vec()),
        Message::Binary(bytes) => (OpCode::Data(Data::Binary), bytes.to_vec()),
        Message::Ping(bytes) => (OpCode::Control(Control::Ping), bytes.to_vec()),
        Message::Pong(bytes) => (OpCode::Control(Control::Pong), bytes.to_vec()),
        Message::Close(frame) => {
            let payload = frame.as_ref().map(frames::close_payload).unwrap_or_default();
            (OpCode::Control(Control::Close), payload.to_vec())
        }
        Message::Frame(_) => unreachable!("the decoder makes messages"),
    };
    let len = payload.len();
    let header = FrameHeader { opcode: code, mask: Some([1, 2, 3, 4]), ..FrameHeader::default() };
    let mut written = Vec::new();
    Frame::from_payload(header, payload.into()).format(&mut written).expect("a Vec takes it");
    match frames::decode(&written, &mut None, max_message) {
        Ok(Decoded::Frame { used, message: Some(again) }) => {
            assert_eq!(used, written.len());
            assert_eq!(&again, message);
        }
        other => panic!("{message:?} read back as {other:?}"),
    }
    let opcode = u8::from(code);
    let (server, server_len) = frames::header(opcode, len);
    let (parsed, parsed_len) =
        FrameHeader::parse(&mut Cursor::new(&server[..server_len])).expect("a header").expect("a whole one");
    assert_eq!((u8::from(parsed.opcode), parsed_len, parsed.mask), (opcode, len as u64, None));
    assert!(
        parsed.is_final && [opcode::TEXT, opcode::BINARY, opcode::CLOSE, opcode::PING, opcode::PONG].contains(&opcode)
    );
}
