//! The AWS adapters against moto: the same port contract suites the local adapters run, then what
//! only these adapters promise (presigned URLs, encryption at rest, dead-letter redrive) and how
//! they fail (lost conditions, throttling, S3 errors).

mod contract;
mod faults;
mod helpers;
mod s3;
mod secrets;
