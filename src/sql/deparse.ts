import { deparseSync } from 'pgsql-deparser';

/** SQL text of a parse tree node (`{ SelectStmt: ... }`), as PostgreSQL would read it back. */
export function deparseNode(node: unknown): string {
  return deparseSync(node as never, { pretty: false } as never);
}
