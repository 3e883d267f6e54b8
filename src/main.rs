mod httpsig;
mod paths;

fn main() {
    let _ = paths::data_dir();
}
