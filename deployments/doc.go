// Package deployments holds how Leakwatch is deployed: the image
// (Dockerfile), the Helm chart (helm/leakwatch) and, at the repository's
// root, docker-compose.yml. It has no code, only tests that check those
// files the way Kubernetes and Compose will read them, without a cluster
// or a Docker daemon: the chart is rendered by Helm's own engine and every
// object decoded strictly into the Kubernetes API types; the Compose file is
// loaded by the Compose specification's own library.
//
// Their libraries (helm.sh/helm/v4, k8s.io/api, compose-go) are imported
// by these tests only, never by the leakwatch binary.
package deployments
