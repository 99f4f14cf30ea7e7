import { useQuery } from "@tanstack/react-query";
import { lazy } from "react";
import { createBrowserRouter, Navigate, RouterProvider } from "react-router";
import { api, call, setCsrfToken } from "./api/client";
import { Failure, Loading } from "./components/States";
import { Layout } from "./pages/Layout";
import { Projects } from "./pages/Projects";
import { SignIn } from "./pages/SignIn";
import { SessionProvider, type Session } from "./session";

const Send = lazy(() => import("./pages/Send"));
const Users = lazy(() => import("./pages/Users"));
const Audit = lazy(() => import("./pages/Audit"));
const Keys = lazy(() => import("./pages/Keys"));
const Segments = lazy(() => import("./pages/Segments"));
const Templates = lazy(() => import("./pages/Templates"));
const Campaigns = lazy(() => import("./pages/Campaigns"));
const Channels = lazy(() => import("./pages/Channels"));
const Settings = lazy(() => import("./pages/Settings"));
const Dashboard = lazy(() => import("./pages/Dashboard"));
const Costs = lazy(() => import("./pages/Costs"));
const Journeys = lazy(() => import("./pages/Journeys"));
const JourneyCanvas = lazy(() => import("./pages/JourneyCanvas"));
const AudienceSearch = lazy(() => import("./pages/Audience").then((m) => ({ default: m.AudienceSearch })));
const PersonPage = lazy(() => import("./pages/Audience").then((m) => ({ default: m.PersonPage })));

const router = createBrowserRouter(
  [
    {
      path: "/",
      element: <Layout />,
      children: [
        { index: true, element: <Navigate to="/apps" replace /> },
        { path: "apps", element: <Projects /> },
        { path: "apps/:appId", element: <Navigate to="send" replace /> },
        { path: "apps/:appId/send", element: <Send /> },
        { path: "apps/:appId/dashboard", element: <Dashboard /> },
        { path: "apps/:appId/costs", element: <Costs /> },
        { path: "apps/:appId/journeys", element: <Journeys /> },
        { path: "apps/:appId/journeys/:journeyId", element: <JourneyCanvas /> },
        { path: "users", element: <Users /> },
        { path: "audit", element: <Audit /> },
        { path: "keys", element: <Keys /> },
        { path: "apps/:appId/audience", element: <AudienceSearch /> },
        { path: "apps/:appId/audience/endpoints/:personId", element: <PersonPage kind="endpoints" /> },
        { path: "apps/:appId/audience/users/:personId", element: <PersonPage kind="users" /> },
        { path: "apps/:appId/segments", element: <Segments /> },
        { path: "apps/:appId/templates", element: <Templates /> },
        { path: "apps/:appId/campaigns", element: <Campaigns /> },
        { path: "apps/:appId/channels", element: <Channels /> },
        { path: "apps/:appId/settings", element: <Settings /> },
        { path: "*", element: <Navigate to="/apps" replace /> },
      ],
    },
  ],
  { basename: "/console" },
);

export function App() {
  const session = useQuery({
    queryKey: ["session"],
    queryFn: async () => {
      const found = await call(api.GET("/v1/clarion/session"));
      if (!found.SignedIn) return null;
      setCsrfToken(found.CsrfToken ?? "");
      return found as Session;
    },
  });
  if (session.isPending) return <Loading />;
  if (session.error) return <Failure error={session.error} />;
  if (!session.data) return <SignIn />;
  return (
    <SessionProvider session={session.data}>
      <RouterProvider router={router} />
    </SessionProvider>
  );
}
