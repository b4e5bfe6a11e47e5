//! Control operations, as an edge reads them from `<prefix>.ctl.*`: any
//! backend may publish there, so any bytes may arrive.
//!
//! - Reading never panics; what is not an operation is an error value.
//! - Encode → decode: an operation the edge accepts encodes (as the SDK
//!   and the HTTP API write them) and reads back equal.

use herald_proto::control::ControlOp;
use herald_proto::json::from_object;

pub fn run(data: &[u8]) {
    let Ok(op) = from_object::<ControlOp>(data) else { return };
    let encoded = serde_json::to_vec(&op).expect("an operation encodes");
    let back: ControlOp = from_object(&encoded).expect("an encoded operation reads back");
    assert_eq!(back, op);
}
