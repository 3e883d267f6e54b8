//! What the tests share: the sandbox that runs the binary, the sending side
//! of callbacks, the real receiver, and a scripted server.

mod callback;
mod flaky;
mod receiver;
mod sandbox;
pub mod tsa;

pub use spawn_elite::callback::httpsig;

pub use callback::{receipt_json, root_for, send_args};
pub use flaky::{Flaky, Seen, Step, read_request};
pub use receiver::{
    HandRequest, ReceiverProc, free_port, hand_signed, load_key, parse_answer, sign_request,
    unix_now,
};
pub use sandbox::{Outcome, Sandbox, git, tree};
