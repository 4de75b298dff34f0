// What every client script does with its output: JSON lines on stdout, the
// last one the result, an exit code, and a watchdog.

/** Prints `obj` as one JSON line. */
export function emitLine(obj) {
  console.log(JSON.stringify(obj));
}

/**
 * The script's end for `result`: `finish(code)` prints it last and exits
 * with `code` a moment later (so that the last packets, a disconnection or
 * a close, reach the server). After `timeoutMs` it finishes with "timed
 * out" as the error.
 */
export function reporter(result, timeoutMs) {
  const finish = (code) => {
    emitLine(result);
    setTimeout(() => process.exit(code), 200);
  };
  setTimeout(() => {
    result.error = result.error || "timed out";
    finish(1);
  }, timeoutMs);
  return finish;
}
