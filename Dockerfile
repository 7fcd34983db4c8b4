# QueryOrchestrator in a container: Node 20 on Debian 12, with PostgreSQL's server binaries so
# that the embedded defaults (throwaway backends for the demo cluster) work too.
FROM node:20-bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-common \
 && sed -i -E 's/^\s*#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' /etc/postgresql-common/createcluster.conf \
 && apt-get install -y --no-install-recommends postgresql postgresql-client \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY . .

# The proxy and the admin API listen on every interface inside the container.
ENV QO_LISTEN=0.0.0.0
EXPOSE 6432 6480
ENTRYPOINT ["npx", "tsx", "src/main.ts"]
CMD ["start", "--config", "orchestrator.yml"]
