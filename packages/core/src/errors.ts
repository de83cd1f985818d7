// One-line errors for bad input. Apps print `error: <message>` for a UserError and exit 1, with no
// stack trace; any other exception is a bug and keeps its stack.

/** An error caused by the user's input (file, config, flag), reported as one line. */
export class UserError extends Error {
  override readonly name = 'UserError';
}

/** Where in an input the problem is: `file:line: field: message` (parts omitted when unknown). */
export interface InputLocation {
  file?: string;
  line?: number;
  field?: string;
}

/** Builds a UserError whose message names the file, line and field. */
export function inputError(where: InputLocation, message: string): UserError {
  const parts: string[] = [];
  if (where.file !== undefined) parts.push(where.line !== undefined ? `${where.file}:${where.line}` : where.file);
  if (where.field !== undefined) parts.push(`field '${where.field}'`);
  parts.push(message.replace(/\s*\n\s*/g, ' '));
  return new UserError(parts.join(': '));
}

/** True for errors that should be shown to the user as one line. */
export function isUserError(e: unknown): e is UserError {
  return e instanceof UserError;
}
