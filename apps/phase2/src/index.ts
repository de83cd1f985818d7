// The phase2 app's CLI layer (tests drive it directly).
export { runCli } from './cli.js';
