import { AppShell, Burger, Button, Group, NavLink, Select, Text, Title } from "@mantine/core";
import { useDisclosure } from "@mantine/hooks";
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { Suspense } from "react";
import { useTranslation } from "react-i18next";
import { NavLink as RouterLink, Outlet, useNavigate, useParams } from "react-router";
import { api, call } from "../api/client";
import { LanguagePicker } from "../components/LanguagePicker";
import { Loading } from "../components/States";
import { useCan, useSession } from "../session";

export function useProjects() {
  return useQuery({ queryKey: ["apps"], queryFn: () => call(api.GET("/v1/apps", { params: { query: {} } })) });
}

function ProjectPicker() {
  const { t } = useTranslation();
  const { appId } = useParams();
  const navigate = useNavigate();
  const projects = useProjects();
  const items = projects.data?.Item ?? [];
  return (
    <Select
      aria-label={t("nav.project")}
      placeholder={t("nav.chooseProject")}
      data={items.map((app) => ({ value: app.Id, label: app.Name }))}
      value={appId ?? null}
      onChange={(value) => value && navigate(`/apps/${value}/send`)}
      searchable
      size="sm"
      w={220}
    />
  );
}

export function Layout() {
  const { t } = useTranslation();
  const session = useSession();
  const can = useCan();
  const { appId } = useParams();
  const [opened, { toggle }] = useDisclosure();
  const queryClient = useQueryClient();
  const signOut = useMutation({
    mutationFn: () => call(api.DELETE("/v1/clarion/session")),
    onSettled: () => queryClient.setQueryData(["session"], null),
  });
  const link = (to: string, label: string) => (
    <NavLink key={to} component={RouterLink} to={to} end label={label} onClick={() => opened && toggle()} />
  );
  return (
    <AppShell header={{ height: 56 }} navbar={{ width: 220, breakpoint: "sm", collapsed: { mobile: !opened } }} padding="md">
      <AppShell.Header>
        <Group h="100%" px="md" justify="space-between" wrap="nowrap">
          <Group wrap="nowrap">
            <Burger opened={opened} onClick={toggle} hiddenFrom="sm" size="sm" aria-label={t("nav.menu")} />
            <Title order={4}>{t("app.name")}</Title>
            <ProjectPicker />
          </Group>
          <Group wrap="nowrap">
            <LanguagePicker />
            <Text size="sm" data-testid="who">
              {session.Username} · {t(`role.${session.Role}`)}
            </Text>
            <Button variant="subtle" size="xs" onClick={() => signOut.mutate()}>
              {t("nav.signOut")}
            </Button>
          </Group>
        </Group>
      </AppShell.Header>
      <AppShell.Navbar p="xs" aria-label={t("nav.menu")}>
        {link("/apps", t("nav.projects"))}
        {appId && link(`/apps/${appId}/audience`, t("nav.audience"))}
        {appId && link(`/apps/${appId}/segments`, t("nav.segments"))}
        {appId && link(`/apps/${appId}/templates`, t("nav.templates"))}
        {appId && link(`/apps/${appId}/dashboard`, t("nav.dashboard"))}
        {appId && link(`/apps/${appId}/campaigns`, t("nav.campaigns"))}
        {appId && link(`/apps/${appId}/journeys`, t("nav.journeys"))}
        {appId && link(`/apps/${appId}/channels`, t("nav.channels"))}
        {appId && link(`/apps/${appId}/settings`, t("nav.settings"))}
        {appId && link(`/apps/${appId}/send`, t("nav.send"))}
        {appId && can("ClarionGetCosts") && link(`/apps/${appId}/costs`, t("nav.costs"))}
        {can("ClarionListUsers") && link("/users", t("nav.users"))}
        {can("ClarionListAccessKeys") && link("/keys", t("nav.keys"))}
        {can("ClarionListAuditEvents") && link("/audit", t("nav.audit"))}
      </AppShell.Navbar>
      <AppShell.Main>
        <Suspense fallback={<Loading />}>
          <Outlet />
        </Suspense>
      </AppShell.Main>
    </AppShell>
  );
}
