/* The floor for any sender built on libcurl: FCM-sized POSTs in batches of 100, multiplexed as HTTP/2 streams on
   one connection by libcurl's multi interface, with no Python at all. bench/push.py --clients compiles and runs it
   (cc -O2 curl_floor.c -lcurl) beside the Python clients; it prints the CPU microseconds per request.

   usage: curl_floor URL CA_FILE REQUESTS */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 100

static size_t keep(char *data, size_t size, size_t count, void *answer) { return size * count; }

static double cpu_seconds(void) {
  struct timespec now;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return now.tv_sec + now.tv_nsec / 1e9;
}

/* Each handle is configured once and re-added per batch with only its body set again, as the guarded client's
   kept handles are. */
static int run(CURLM *multi, CURL **easy, const char *body, int requests) {
  for (int sent = 0; sent < requests; sent += BATCH) {
    for (int i = 0; i < BATCH; i++) {
      curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, body);
      curl_multi_add_handle(multi, easy[i]);
    }
    int running = 1, left = BATCH;
    while (left) {
      curl_multi_perform(multi, &running);
      CURLMsg *message;
      int queued;
      while ((message = curl_multi_info_read(multi, &queued))) {
        if (message->msg != CURLMSG_DONE) continue;
        long status = 0;
        curl_easy_getinfo(message->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        if (message->data.result != CURLE_OK || status != 200) {
          fprintf(stderr, "request failed: %s, status %ld\n", curl_easy_strerror(message->data.result), status);
          return 1;
        }
        curl_multi_remove_handle(multi, message->easy_handle);
        left--;
      }
      if (left) curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s URL CA_FILE REQUESTS\n", argv[0]);
    return 2;
  }
  const char *body = "{\"message\":{\"token\":\"token-0\",\"notification\":{\"title\":\"Hello\",\"body\":\"World\"}}}";
  CURLM *multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
  struct curl_slist *headers = curl_slist_append(NULL, "authorization: Bearer ya29.bench");
  headers = curl_slist_append(headers, "content-type: application/json; charset=UTF-8");
  headers = curl_slist_append(headers, "Expect:");
  CURL *easy[BATCH];
  for (int i = 0; i < BATCH; i++) {
    easy[i] = curl_easy_init();
    curl_easy_setopt(easy[i], CURLOPT_URL, argv[1]);
    curl_easy_setopt(easy[i], CURLOPT_CAINFO, argv[2]);
    curl_easy_setopt(easy[i], CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(easy[i], CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, keep);
  }
  if (run(multi, easy, body, 1000)) return 1; /* connect, warm up */
  int requests = atoi(argv[3]);
  double started = cpu_seconds();
  if (run(multi, easy, body, requests)) return 1;
  printf("%.1f\n", (cpu_seconds() - started) / requests * 1e6);
  return 0;
}
