import { Alert, Button, Center, Paper, PasswordInput, Stack, TextInput, Title } from "@mantine/core";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { useTranslation } from "react-i18next";
import { api, call, setCsrfToken } from "../api/client";
import { LanguagePicker } from "../components/LanguagePicker";

export function SignIn() {
  const { t } = useTranslation();
  const queryClient = useQueryClient();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const signIn = useMutation({
    mutationFn: () => call(api.POST("/v1/clarion/session", { body: { Username: username, Password: password } })),
    onSuccess: (session) => {
      setCsrfToken(session.CsrfToken ?? "");
      queryClient.setQueryData(["session"], session);
    },
  });
  const submit = (event: FormEvent) => {
    event.preventDefault();
    signIn.mutate();
  };
  return (
    <Center mih="100vh">
      <Paper withBorder p="xl" w={380} component="form" onSubmit={submit}>
        <Stack>
          <Title order={2}>{t("signIn.title")}</Title>
          {signIn.error && (
            <Alert color="red" role="alert">
              <span lang="en">{signIn.error.message}</span>
            </Alert>
          )}
          <TextInput
            label={t("signIn.username")}
            value={username}
            onChange={(e) => setUsername(e.currentTarget.value)}
            required
            autoComplete="username"
            autoFocus
          />
          <PasswordInput
            label={t("signIn.password")}
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
            required
            autoComplete="current-password"
          />
          <Button type="submit" loading={signIn.isPending}>
            {t("signIn.submit")}
          </Button>
          <LanguagePicker />
        </Stack>
      </Paper>
    </Center>
  );
}
