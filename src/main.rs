use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a request allocates and frees many
/// small buffers (rows, strings, JSON) across tokio's worker threads, and
/// glibc's allocator took about a fifth of the server's CPU on a chat page
/// (`perf`: malloc, free and their chunk consolidation). Without transparent
/// huge pages (`no_thp`), which took the resident peak from 37 to 53 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    devx::cli::main()
}
