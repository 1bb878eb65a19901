// The monitor's wire formats, page side: the single definition in
// sciml_lab/widgets/wire.json (bundled here; the kernel reads the same file).
import WIRE from "../../sciml_lab/widgets/wire.json" with { type: "json" };
import { decodeRows } from "./util.js";

export { WIRE };
// the buffer's columns before the metrics, and where each leading value sits in a row
export const LEADING = WIRE.rows.buffer.leading;
export const STEP = LEADING.indexOf("step");
export const WALL = LEADING.indexOf("wall_time");

// A rows message (header, buffers) as {reset, names, rows}: each row a Float64Array of
// LEADING.length + names.length values (NaN: no value). null for any other message.
export function readRows(msg, buffers) {
  if (!msg || msg.type !== WIRE.rows.message.properties.type.const) return null;
  const rows = decodeRows(buffers[0], msg.n, LEADING.length + msg.names.length);
  return { reset: Boolean(msg.reset), names: msg.names, rows };
}
