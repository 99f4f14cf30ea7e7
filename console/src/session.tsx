import { createContext, useContext, type ReactNode } from "react";
import type { Schemas } from "./api/client";

/** A signed-in session: every member is present once SignedIn is true. */
export type Session = Required<{ [K in keyof Schemas["SessionResponse"]]: NonNullable<Schemas["SessionResponse"][K]> }>;

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ session, children }: { session: Session; children: ReactNode }) {
  return <SessionContext.Provider value={session}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (session === null) throw new Error("useSession outside a signed-in page");
  return session;
}

/** Whether the signed-in role may call an operation: pages hide or disable what the server would refuse. */
export function useCan(): (operation: string) => boolean {
  const session = useSession();
  const allowed = new Set(session.Operations);
  return (operation) => allowed.has(operation);
}
