-- +goose Up
CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text        NOT NULL UNIQUE,
    email         text        NOT NULL,
    password_hash text        NOT NULL,
    first_name    text        NOT NULL DEFAULT '',
    last_name     text        NOT NULL DEFAULT '',
    city          text        NOT NULL DEFAULT '',
    address       text        NOT NULL DEFAULT '',
    is_staff      boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE categories (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    image       text NOT NULL DEFAULT ''
);

CREATE TABLE products (
    id          bigserial PRIMARY KEY,
    name        text          NOT NULL,
    description text          NOT NULL DEFAULT '',
    price       numeric(10,2) NOT NULL CHECK (price >= 0),
    stock       integer       NOT NULL DEFAULT 0 CHECK (stock >= 0),
    category_id bigint        NOT NULL REFERENCES categories(id) ON DELETE RESTRICT,
    image       text          NOT NULL DEFAULT '',
    created_at  timestamptz   NOT NULL DEFAULT now(),
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    -- 'simple' keeps every word (no stemming, no stop words) so a prefix
    -- search for part of a product name always finds it.
    search      tsvector GENERATED ALWAYS AS
                (to_tsvector('simple', name || ' ' || description)) STORED
);

-- Keyset paging: every ordering has an index ending in id, the tiebreak, so
-- page 1,000 is an index range scan, never an OFFSET.
CREATE INDEX products_price_id      ON products (price, id);
CREATE INDEX products_name_id       ON products (name, id);
CREATE INDEX products_created_id    ON products (created_at, id);
CREATE INDEX products_stock         ON products (stock);
CREATE INDEX products_instock_id    ON products (id) WHERE stock > 0;
CREATE INDEX products_instock_price ON products (price, id) WHERE stock > 0;
CREATE INDEX products_cat_id        ON products (category_id, id);
CREATE INDEX products_cat_price_id  ON products (category_id, price, id);
CREATE INDEX products_cat_name_id   ON products (category_id, name, id);
CREATE INDEX products_cat_created   ON products (category_id, created_at, id);
CREATE INDEX products_search        ON products USING gin (search);

CREATE TABLE reviews (
    id         bigserial PRIMARY KEY,
    product_id bigint      NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    user_id    bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    rating     smallint    NOT NULL CHECK (rating BETWEEN 1 AND 5),
    text       text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (product_id, user_id)
);
CREATE INDEX reviews_product_created ON reviews (product_id, created_at DESC, id DESC);

CREATE TABLE carts (
    id         bigserial PRIMARY KEY,
    user_id    bigint      NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cart_items (
    cart_id    bigint      NOT NULL REFERENCES carts(id) ON DELETE CASCADE,
    product_id bigint      NOT NULL REFERENCES products(id) ON DELETE CASCADE,
    quantity   integer     NOT NULL CHECK (quantity > 0),
    added_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cart_id, product_id)
);
CREATE INDEX cart_items_product ON cart_items (product_id);

CREATE TABLE orders (
    id         bigserial PRIMARY KEY,
    user_id    bigint        NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status     text          NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'confirmed', 'cancelled')),
    total      numeric(12,2) NOT NULL,
    created_at timestamptz   NOT NULL DEFAULT now(),
    updated_at timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX orders_user_created ON orders (user_id, created_at DESC, id DESC);

CREATE TABLE order_items (
    order_id   bigint        NOT NULL REFERENCES orders(id) ON DELETE CASCADE,
    -- Kept (NULL) when a product is later deleted: the order keeps its name
    -- and price as sold.
    product_id bigint        REFERENCES products(id) ON DELETE SET NULL,
    name       text          NOT NULL,
    price      numeric(10,2) NOT NULL,
    quantity   integer       NOT NULL CHECK (quantity > 0)
);
CREATE INDEX order_items_order ON order_items (order_id);
CREATE INDEX order_items_product ON order_items (product_id);

-- Transactional outbox: written in the same transaction as the order, relayed
-- by the worker to a Redis Stream at least once.
CREATE TABLE outbox (
    id         bigserial PRIMARY KEY,
    topic      text        NOT NULL,
    payload    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);
CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_at IS NULL;

-- Cache-tag bumps written inside a write's transaction and deleted once
-- Redis acknowledged them; leftovers are retried so no bump is lost.
CREATE TABLE tag_bumps (
    id         bigserial PRIMARY KEY,
    tags       text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    attempts   integer     NOT NULL DEFAULT 0
);

-- Refresh tokens for rotation: each use revokes the token and issues the
-- next one of the same family; reusing a revoked one revokes the family.
CREATE TABLE refresh_tokens (
    jti         text PRIMARY KEY,
    family      text        NOT NULL,
    user_id     bigint      NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    replaced_by text
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- +goose Down
DROP TABLE refresh_tokens, tag_bumps, outbox, order_items, orders, cart_items,
    carts, reviews, products, categories, users;
