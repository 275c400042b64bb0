use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a request allocates and frees many
/// small buffers (rows, strings, JSON) across tokio's worker threads, and
/// glibc's allocator took about a fifth of the server's CPU on a chat page
/// (`perf`), most of it in `_int_free` and `malloc_consolidate`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    devx::cli::main()
}
