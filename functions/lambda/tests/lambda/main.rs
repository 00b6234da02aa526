//! The Lambda functions' handlers, called with real API Gateway v2, function-URL and SQS event
//! payloads against the AWS adapters on moto; and the queue's faults: a job failing on every
//! attempt ends failed in the dead-letter queue, and a Lambda killed mid-batch resumes without
//! redoing finished items; and Client ID Metadata Documents accepted through the handler.

mod cimd;
mod faults;
mod fixtures;
mod helpers;
mod retention;
