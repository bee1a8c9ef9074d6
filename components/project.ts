// Where the project is, for code that reads its files (scripts, build contexts).
// This module sits one directory below the project, as the bundle
// tools/cli.cjs builds (.cache/render.js) does, so the same expression finds
// the project whether it runs as TypeScript or bundled; modules deeper in
// components/ take it from here.
import * as path from "node:path";

export const PROJECT_DIR = path.resolve(__dirname, "..");
